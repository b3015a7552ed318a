"""glibc malloc tuning of the serving process (`customlabels.inference.allocator`).

Each case runs in a fresh interpreter: the settings are process-wide, and the point is what
glibc does with a large block after them, read from glibc's own ``mallinfo2``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

SRC = Path(__file__).resolve().parents[2] / "src"

# Frees a 4 MiB mapped block (glibc's dynamic threshold then rises to 4 MiB), then allocates a
# 3 MiB block and reports whether it was mapped (mallinfo2's hblkhd: bytes in mapped blocks).
SCRIPT = """
import ctypes, json, sys
from customlabels.inference.allocator import tune_allocator

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Mallinfo2
applied = tune_allocator() if sys.argv[1] == "tune" else {}
big = bytearray(4 * 2**20)
del big
before = libc.mallinfo2().hblkhd
block = bytearray(3 * 2**20)
mapped = libc.mallinfo2().hblkhd - before >= 3 * 2**20
print(json.dumps({"applied": applied, "mapped": mapped}))
"""


def _run(mode: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUN"))}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        env={**clean, "PYTHONPATH": str(SRC), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_without_tuning_a_freed_large_block_sends_the_next_ones_to_the_heap() -> None:
    # the glibc behaviour the tuning exists for: blocks that stay in a heap once freed
    assert _run("plain") == {"applied": {}, "mapped": False}


def test_tuning_keeps_large_blocks_mapped_and_caps_the_arenas() -> None:
    assert _run("tune") == {
        "applied": {"mmap_threshold": 1024 * 1024, "arena_max": 2},
        "mapped": True,
    }


@pytest.mark.parametrize(
    ("env", "applied"),
    [
        ({"MALLOC_ARENA_MAX": "4"}, {"mmap_threshold": 1024 * 1024}),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=2097152"}, {"arena_max": 2}),
    ],
)
def test_a_setting_from_the_environment_wins(env: dict[str, str], applied: dict[str, int]) -> None:
    result = _run("tune", **env)
    assert result["applied"] == applied


# The feature cache's pattern: temporaries from the heap, each followed by a block that is kept,
# so the freed temporaries are holes the heap cannot shrink past (each temporary a little larger
# than the last, as the views' sizes vary, and the kept blocks larger than a hole, so neither
# fills an earlier one). Reports the
# process's resident MiB after the temporaries are freed, and after release_free_memory().
TRIM_SCRIPT = """
import ctypes, json
from customlabels.inference.allocator import release_free_memory

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

kept = []
for i in range(200):
    temporary = bytearray(2**20 + 8192 * i)  # a little too big for the last hole
    ctypes.memset((ctypes.c_char * len(temporary)).from_buffer(temporary), 1, len(temporary))
    kept.append(bytearray(2 * 2**20))
    del temporary
held = rss_mib()
released = release_free_memory()
print(json.dumps({"held": held, "after": rss_mib(), "released": released}))
"""


def test_release_free_memory_hands_back_the_holes_between_kept_blocks() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUN"))}
    done = subprocess.run(
        [sys.executable, "-c", TRIM_SCRIPT],
        # 1 MiB blocks from the heap, as the dynamic threshold gives them once it has risen
        env={**clean, "PYTHONPATH": str(SRC), "MALLOC_MMAP_THRESHOLD_": str(4 * 2**20)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["released"] is True
    assert result["held"] - result["after"] > 100, result  # MiB of the ~200 freed
