"""Use cases run in the thread pool (`customlabels.service.threads.in_thread`): a failed call's
frames are freed when its error is handled, not at the cycle collector's next full pass."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from starlette.concurrency import run_in_threadpool

from customlabels.errors import InvalidImageError
from customlabels.service.threads import in_thread

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own, as a server's event loop runs: the pytest worker's
    thread may hold a running loop already (the console tests' browser, Playwright's sync API,
    keeps one for the whole session)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main).result()


class Buffer:
    """Stands for a request's decoded image: a local of the failing call's frame."""


def failing(ref: list[weakref.ref[Buffer]], error: Exception) -> None:
    buffer = Buffer()
    ref.append(weakref.ref(buffer))
    try:
        raise OSError("image file is truncated")
    except OSError:
        raise error from None


@pytest.fixture
def no_cycle_collection() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _handled(runner: Callable[..., Awaitable[Any]], error: Exception) -> tuple[bool, Exception]:
    """Run ``failing`` through ``runner`` and handle its error as a route does; return whether
    the failed call's buffer is still alive after that, and the error."""
    ref: list[weakref.ref[Buffer]] = []

    async def route() -> Exception:
        try:
            await runner(failing, ref, error)
        except Exception as exc:
            return exc
        raise AssertionError("no error")

    caught = run(route())
    return ref[0]() is not None, caught


def test_a_service_error_frees_the_failed_call_at_once(no_cycle_collection: None) -> None:
    alive, caught = _handled(in_thread, InvalidImageError("Image.Bytes: truncated"))
    assert not alive
    assert isinstance(caught, InvalidImageError)
    assert str(caught) == "Image.Bytes: truncated"
    assert caught.__context__ is None


def test_starlettes_threadpool_keeps_it_until_a_collection(no_cycle_collection: None) -> None:
    # the reason for in_thread: AnyIO's future, the traceback and the awaiting frame form a cycle
    alive, _ = _handled(run_in_threadpool, InvalidImageError("Image.Bytes: truncated"))
    assert alive
    gc.collect()


def test_another_error_keeps_its_traceback_for_the_log() -> None:
    _, caught = _handled(in_thread, RuntimeError("bug"))
    assert isinstance(caught, RuntimeError)
    frames = []
    tb = caught.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert "failing" in frames


def test_a_result_comes_back() -> None:
    assert run(in_thread(divmod, 7, 2)) == (3, 1)
