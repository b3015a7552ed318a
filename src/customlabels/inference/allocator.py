"""glibc malloc settings for a serving process, so its memory stays flat under load.

A detection allocates a few large short-lived buffers (a 5.6 MB base64 body, the decoded
frame, an 11 MB float32 input tensor, ONNX Runtime's arena chunks) from many threads (AnyIO's
pool, one model loader thread per StartProjectVersion). With glibc's defaults two things keep
that memory after it is freed (``bench/results/reliability.md``: 1.0–1.4 GB at rest between
load runs, with no Python object and no ONNX session leaking):

- the *dynamic* mmap threshold: the first time a large mmapped block is freed glibc raises the
  threshold to that block's size (up to 32 MiB), so later buffers of that size come from the
  heap and stay there, fragmented, once freed;
- one heap (arena) per thread, up to 8 per core: every heap keeps its own free memory.

:func:`tune_allocator` fixes the threshold at :data:`MMAP_THRESHOLD` (large buffers are mapped
and unmapped, so freeing one gives its pages back) and caps the heaps at :data:`ARENA_MAX`. The
process then settles at a plateau (≈ 630 MiB for two 1280×736 detector sessions) instead of
creeping. A setting given in the environment (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``,
``GLIBC_TUNABLES``) wins; on a C library other than glibc this does nothing.

Training's feature cache has the opposite shape: thousands of kept 0.1–0.3 MB float16 maps,
each computed through a few MB of float32 temporaries freed at once. The kept maps pin the heap
around the temporaries' holes: caching 300 bee views (94 MiB of maps) grew the process by
628 MiB. :func:`release_free_memory` (``malloc_trim``, which also hands back free pages inside
the heap) every 25 views kept that to 102 MiB, in 105 s against 95 s for the 300 views (one
measurement each, beside another training on the same 2 cores: ``training/views.py``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

__all__ = ["ARENA_MAX", "MMAP_THRESHOLD", "release_free_memory", "tune_allocator"]

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 1024 * 1024  # bytes: a block this large or larger is mapped, and unmapped on free
ARENA_MAX = 2  # heaps; small blocks only (Python objects use pymalloc, large blocks are mapped)
# mallopt(3) parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_ENVIRONMENT = {
    _M_MMAP_THRESHOLD: ("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold"),
    _M_ARENA_MAX: ("MALLOC_ARENA_MAX", "glibc.malloc.arena_max"),
}


def _set_by_environment(param: int) -> bool:
    variable, tunable = _ENVIRONMENT[param]
    return variable in os.environ or tunable in os.environ.get("GLIBC_TUNABLES", "")


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim(0)``).

    Returns:
        Whether memory was released; False as well on a C library other than glibc.
    """
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))


def tune_allocator() -> dict[str, int]:
    """Fix glibc's mmap threshold and cap its arenas (see the module docstring).

    Call it early, before the threads that serve requests start: heaps that already exist are
    kept. Idempotent.

    Returns:
        The settings applied, by name (``{"mmap_threshold": bytes, "arena_max": n}``); empty
        when the C library is not glibc.
    """
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        log.debug("not glibc: malloc settings left as they are")
        return {}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied: dict[str, int] = {}
    for name, param, value in (
        ("mmap_threshold", _M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("arena_max", _M_ARENA_MAX, ARENA_MAX),
    ):
        if _set_by_environment(param):
            continue
        if mallopt(param, value) == 1:
            applied[name] = value
        else:
            log.warning("mallopt(%s, %d) refused: malloc settings left as they are", name, value)
    return applied
