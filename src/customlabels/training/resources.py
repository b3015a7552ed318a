"""What a run computes on: the torch device and the number of CPU threads.

``threads: 0`` takes the cores that are idle right now: on a shared machine, OpenMP threads that
wait for each other cost more than they give (measured here: 2 threads 2.2× slower than 1 at a
load of 6).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from customlabels.errors import ConfigError
from customlabels.training.config import Device

__all__ = ["busy_cores", "pick_device", "torch_threads"]


def pick_device(choice: Device) -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; ``cuda`` without a device is a ConfigError."""
    if choice == Device.AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == Device.CUDA and not torch.cuda.is_available():
        raise ConfigError("device: expected a CUDA device for 'cuda', found none")
    return torch.device(choice.value)


def torch_threads(requested: int) -> int:
    """The thread count for torch: ``requested``, or with 0 the cores idle right now."""
    if requested:
        return requested
    cores = os.cpu_count() or 1
    # A core counts as taken when at least 3/4 of it is busy: a short burst from another
    # process (a git command, a shell) must not halve the threads of a 15-minute run.
    return max(1, min(cores, cores - math.floor(busy_cores(cores) + 0.25)))


def busy_cores(cores: int, window_s: float = 1.0) -> float:
    """Cores busy right now: from ``/proc/stat`` over ``window_s`` (the load average lags by
    minutes: a test run that just ended still reads as load), else the 1-minute load."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(window_s)
        total1, idle1 = sample()
        return cores * (1 - (idle1 - idle0) / max(1, total1 - total0))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0
