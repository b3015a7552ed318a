"""Running a use case in the thread pool without keeping a failed request's memory alive.

The REST and JSON APIs and the console (each an HTTP layer above the service) await their
blocking use cases through :func:`in_thread`.

AnyIO's ``to_thread.run_sync`` (starlette's ``run_in_threadpool``) hands a worker's exception
back through an asyncio future: the exception's traceback holds the awaiting coroutine's frame,
which holds the future, which holds the exception. That reference cycle keeps every frame of
the failed call alive, with its locals (the request body, the decoded image, Pillow's
half-decoded buffers), until Python's cycle collector happens to run a full collection. Under the
reliability load (``bench/reliability.py --probe``) that was 1,700–3,600 objects and 50–100 MiB
waiting at rest after each 30-s run, every one of them a failed DetectCustomLabels.

:func:`in_thread` brings the exception back as a value instead, so no future holds it, and
re-raises it on the event loop. A service error (:class:`~customlabels.errors.CustomLabelsError`,
answered from its message alone) loses its worker frames and chained exceptions first; any
other exception keeps its traceback for the log of the 500 it becomes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread

from customlabels.errors import CustomLabelsError

__all__ = ["in_thread"]

T = TypeVar("T")


@dataclass
class _Failed:
    error: BaseException


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        if isinstance(exc, CustomLabelsError):
            # rendered from its message: the frames and the exception it replaced are not needed
            exc.__traceback__ = exc.__context__ = exc.__cause__ = None
        return _Failed(exc)


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in AnyIO's thread pool; its result, or its exception raised here.

    Raises:
        Whatever ``fn`` raises (a :class:`~customlabels.errors.CustomLabelsError` without its
        worker traceback or chained exceptions).
    """
    outcome = await anyio.to_thread.run_sync(functools.partial(_call, fn, *args, **kwargs))
    if isinstance(outcome, _Failed):
        error = outcome.error
        del outcome
        try:
            raise error
        finally:
            del error  # else this frame (in the traceback) would hold the exception: a cycle
    result: T = outcome
    return result
