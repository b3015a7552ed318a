"""The reliability load run, short: 16 Locust clients for 10 s of mixed DetectCustomLabels
(valid, corrupt, oversized, wrong ARN, unsigned, a version stopped and started mid-run) against
a real `customlabels serve` process. Pass/fail only (no 5xx, no wrong answer, no failed
request, every kind sent); the figures come from `bench/reliability.py` (60 s, 6 runs).

Behind the ``load`` marker: ``pytest -m load``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "reliability.py"


@pytest.mark.load
def test_sixteen_clients_of_mixed_requests_get_only_right_answers(tiny_detector_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, str(BENCH), "--model", str(tiny_detector_dir), "--check"]
    done = subprocess.run(
        [*argv, "--seconds", "10", "--users", "16"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, verdict
    assert (verdict["5xx"], verdict["wrong"], verdict["other"]) == (0, 0, 0)
    assert set(verdict["sent"]) == {
        "valid",
        "corrupt",
        "oversized",
        "wrong-arn",
        "unsigned",
        "stopped-mid-run",
    }
    assert verdict["churn_cycles"] >= 1  # the second version really was stopped mid-run
