"""`customlabels serve` with a memory probe: what a server's resident memory is made of.

Bench-only (the shipped server has no such hook). Run as the server command::

    python bench/serve_probe.py serve --home H --port P ...   # the `customlabels` CLI's argv

and send the process ``SIGUSR1``: it appends one JSON line to ``$CL_PROBE_OUT`` with

- ``rss_mib``: resident memory; with ``CL_PROBE_TRIM=1``, ``rss_after_trim_mib``: after
  ``malloc_trim(0)`` (glibc hands free pages of every arena back), so the difference is memory
  that malloc held free (the trim changes what follows: leave it off to watch a run undisturbed);
- ``malloc``: glibc's ``mallinfo2`` in MiB: ``in_use`` (``uordblks``, allocated by malloc from
  its arenas), ``free`` (``fordblks``, free in the arenas), ``mmapped`` (``hblkhd``, blocks
  over the mmap threshold), and ``arenas`` (how many, from ``malloc_info``);
- ``rss_before_gc_mib``, ``gc_collected``, ``garbage``, ``garbage_frames``: the RSS before a full
  collection of reference cycles, how many objects it freed, of which types, and which frames
  (garbage waiting for the collector: the other figures are read after it);
- ``threads``: the process's threads; ``gc_objects``: Python objects the collector tracks;
  ``alive``: how many of :data:`WATCHED` (ONNX sessions, predictors, threads, PIL images,
  catalog sessions) are alive;
- with ``CL_PROBE_TRACEMALLOC=1`` (tracing starts at the first probe, so it covers what the
  server allocates from then on): ``traced_mib`` (Python and numpy allocations alive, made
  since tracing started) and ``top``: the 12 source lines whose live allocations grew most
  since the previous probe (``size_diff_kib``, ``count_diff``).

A leak of Python objects grows ``traced_mib``; a native leak grows ``in_use`` with
``traced_mib`` flat; fragmentation grows ``free`` (given back by the trim) with ``in_use`` flat;
memory held by reference cycles shows as ``rss_before_gc_mib`` above ``rss_mib``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import re
import signal
import sys
import threading
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

TRACE = os.environ.get("CL_PROBE_TRACEMALLOC") == "1"
TRIM = os.environ.get("CL_PROBE_TRIM") == "1"


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_libc.mallinfo2.restype = _Mallinfo2
_libc.malloc_trim.argtypes = [ctypes.c_size_t]
_libc.open_memstream.restype = ctypes.c_void_p
_libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
_libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
_libc.fclose.argtypes = [ctypes.c_void_p]
_libc.free.argtypes = [ctypes.c_void_p]
_previous: list[tracemalloc.Snapshot] = []
# objects that own native memory or threads: a count rising from probe to probe is a leak
WATCHED = {"InferenceSession", "Predictor", "ServedModel", "Thread", "ndarray", "Image", "Session"}


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _arenas() -> int:
    buf, size = ctypes.c_char_p(), ctypes.c_size_t()
    stream = _libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    _libc.malloc_info(0, stream)
    _libc.fclose(stream)
    text = ctypes.string_at(buf, size.value).decode()
    _libc.free(ctypes.cast(buf, ctypes.c_void_p))
    return len(re.findall(r"<heap nr=", text))


def probe() -> dict[str, Any]:
    """One probe (see the module docstring)."""
    info = _libc.mallinfo2()
    mib = 2**20
    before_gc = _rss_mib()
    # what the cycle collector frees now: garbage that was waiting for a full collection
    gc.set_debug(gc.DEBUG_SAVEALL)
    collected = gc.collect()
    gc.set_debug(0)
    garbage = Counter(type(o).__name__ for o in gc.garbage)
    frames = Counter(
        f"{Path(o.f_code.co_filename).name}:{o.f_code.co_name}"
        for o in gc.garbage
        if isinstance(o, FrameType)
    )
    gc.garbage.clear()
    gc.collect()
    objects = gc.get_objects()
    alive = Counter(n for n in (type(o).__name__ for o in objects) if n in WATCHED)
    record: dict[str, Any] = {
        "rss_mib": round(_rss_mib(), 1),
        "malloc": {
            "in_use": round(info.uordblks / mib, 1),
            "free": round(info.fordblks / mib, 1),
            "mmapped": round(info.hblkhd / mib, 1),
            "arenas": _arenas(),
        },
        "threads": threading.active_count(),
        "os_threads": len(os.listdir("/proc/self/task")),
        "gc_objects": len(objects),
        "rss_before_gc_mib": round(before_gc, 1),
        "gc_collected": collected,
        "garbage": dict(garbage.most_common(8)),
        "garbage_frames": dict(frames.most_common(8)),
        "alive": dict(sorted(alive.items())),
    }
    if TRACE and not tracemalloc.is_tracing():
        tracemalloc.start(8)  # at the first probe: tracing the imports would slow startup 10×
    elif TRACE:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        record["traced_mib"] = round(tracemalloc.get_traced_memory()[0] / mib, 1)
        if _previous:
            stats = snapshot.compare_to(_previous[-1], "lineno")[:12]
            record["top"] = [
                {
                    "where": str(s.traceback[0]),
                    "size_diff_kib": round(s.size_diff / 1024, 1),
                    "count_diff": s.count_diff,
                }
                for s in stats
            ]
        _previous[:] = [snapshot]
    if TRIM:
        _libc.malloc_trim(0)
        record["rss_after_trim_mib"] = round(_rss_mib(), 1)
    return record


def _on_signal(signum: int, frame: Any) -> None:
    record = probe()
    with open(os.environ["CL_PROBE_OUT"], "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    from customlabels.cli.main import main

    signal.signal(signal.SIGUSR1, _on_signal)
    sys.argv[0] = "customlabels"
    main()
