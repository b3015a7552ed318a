"""Waiting out a store outage: the one backoff rule every consumer uses.

A transient store error (:class:`~customlabels.errors.StoreUnavailableError`: connection
refused or reset, timeout, 5xx, throttling) is not the image's fault. botocore already retries
single requests a few times (standard mode); when the store stays down longer, the worker keeps
the job it holds and tries it again after ``first_s``, doubling up to ``max_s`` (±20 % jitter,
so workers that failed together do not come back together), for at most ``give_up_s``. Only
then does the error reach the queue, which redelivers the job later and counts an attempt.

Why not tenacity: the wait must end at once on SIGTERM (``stop``) and never outlast the job's
lease or visibility timeout (``deadline``); the loop is a dozen lines with both.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from customlabels.errors import StoreUnavailableError

__all__ = ["OutagePolicy", "backoff_delay", "through_outages"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def backoff_delay(attempt: int, first_s: float, max_s: float) -> float:
    """``min(max_s, first_s * 2**attempt)``: the wait before retry ``attempt`` (0-based)."""
    return float(min(max_s, first_s * 2 ** max(0, attempt)))


@dataclass(frozen=True)
class OutagePolicy:
    """How a worker waits out a store outage before handing the job back to its queue.

    Attributes:
        first_s: first wait, seconds; doubled after each failure up to ``max_s``.
        max_s: longest single wait.
        give_up_s: total time spent retrying one job before the error is raised to the queue.
    """

    first_s: float = 0.5
    max_s: float = 30.0
    give_up_s: float = 300.0

    def delay(self, attempt: int) -> float:
        return backoff_delay(attempt, self.first_s, self.max_s) * random.uniform(0.8, 1.2)


def through_outages(
    fn: Callable[[], T],
    policy: OutagePolicy,
    stop: threading.Event | None = None,
    deadline: float | None = None,
    what: str = "job",
) -> T:
    """Call ``fn`` until it does not raise :class:`StoreUnavailableError`.

    Args:
        fn: the work (e.g. ``process_image`` bound to its arguments); every other exception
            passes through at once.
        policy: waits and how long to keep trying.
        stop: set on shutdown: the waiting ends and the last error is raised.
        deadline: a ``time.monotonic()`` instant no wait may pass (the job's lease, a Lambda
            invocation's end).

    Raises:
        StoreUnavailableError: still failing after ``policy.give_up_s`` (or at ``deadline``,
            or on ``stop``).
    """
    start = time.monotonic()
    end = start + policy.give_up_s
    if deadline is not None:
        end = min(end, deadline)
    attempt = 0
    while True:
        try:
            return fn()
        except StoreUnavailableError as exc:
            wait = policy.delay(attempt)
            if time.monotonic() + wait > end or (stop is not None and stop.is_set()):
                log.warning("%s: store still unavailable, giving it back: %s", what, exc.message)
                raise
            log.warning("%s: store unavailable, retry in %.1f s: %s", what, wait, exc.message)
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
            attempt += 1
