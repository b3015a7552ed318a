"""Device and threads: ``threads: 0`` follows the cores idle right now."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from customlabels.errors import ConfigError
from customlabels.training.config import Device
from customlabels.training.resources import busy_cores, pick_device, torch_threads


def test_idle_cores_follow_the_machine_now() -> None:
    """A process spinning on one core right now takes that core away from ``threads: 0``
    (the 1-minute load average would not have seen it yet)."""
    cores = os.cpu_count() or 1
    spin = subprocess.Popen(
        [sys.executable, "-c", "import time\nt=time.time()+4\nwhile time.time()<t: pass"]
    )
    try:
        time.sleep(0.5)  # let it start
        assert busy_cores(cores, 1.0) >= 0.75
        assert torch_threads(0) <= max(1, cores - 1)
    finally:
        spin.kill()
        spin.wait()
    assert torch_threads(3) == 3  # an explicit count is kept as asked


def test_device_choice() -> None:
    assert pick_device(Device.CPU) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device(Device.AUTO).type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device"):
            pick_device(Device.CUDA)
