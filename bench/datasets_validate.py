"""Dataset import/validation timings on the real sets (median of several runs).

Run: .venv/bin/python bench/datasets_validate.py [--runs 7]
Writes bench/results/datasets.md. The CLI figure includes interpreter start and imports; the
baseline measured in the same script is a bare `python -c "import json"` start.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
CLI = [sys.executable, "-m", "customlabels.cli.main"]


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from customlabels.datasets.split import plan_split
    from customlabels.datasets.validate import validate_manifest
    from customlabels.formats.groundtruth import load_ground_truth

    rows = []
    baseline = _median(lambda: _run([sys.executable, "-c", "import json"]), args.runs)
    rows.append(("python start (baseline)", "-", baseline))
    for name in ("bees", "bccd", "bee-crops"):
        manifest = DATASETS / name / "output.manifest"
        cli = _median(
            lambda m=manifest: _run([*CLI, "dataset", "validate", str(m), "--json"]), args.runs
        )
        rows.append((f"CLI `dataset validate --json` {name}", name, cli))
        rows.append(
            (
                f"validate_manifest() {name}",
                name,
                _median(lambda m=manifest: validate_manifest(m), args.runs),
            )
        )
        rows.append(
            (
                f"load_ground_truth() {name}",
                name,
                _median(lambda m=manifest: load_ground_truth(m), args.runs),
            )
        )
        ds = load_ground_truth(manifest)
        from customlabels.datasets import groups

        groups._dhash.cache_clear()
        t = time.perf_counter()
        plan_split(ds, 0.2, 0)
        rows.append(
            (f"plan_split() {name} (cold: hashes every image)", name, time.perf_counter() - t)
        )
    lines = [
        "# Datasets: import and validation timings",
        "",
        f"Machine: 2 CPU cores shared with four other helpers' jobs (contended); median of "
        f"{args.runs} runs unless marked cold. Measured by `bench/datasets_validate.py`.",
        "",
        "| what | set | seconds | × python start |",
        "|---|---|---:|---:|",
    ]
    for what, name, secs in rows:
        lines.append(f"| {what} | {name} | {secs:.3f} | {secs / baseline:.1f} |")
    out = REPO / "bench" / "results" / "datasets.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
