from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from customlabels.pipeline.job import JobStatus
from customlabels.pipeline.sqlite_queue import QueueConfig, SqliteJobQueue


def _queue(tmp_path: Path, **cfg: float) -> SqliteJobQueue:
    return SqliteJobQueue(tmp_path / "q.sqlite3", QueueConfig(**cfg))  # type: ignore[arg-type]


def test_duplicates_collapse_and_finished_jobs_requeue(tmp_path: Path) -> None:
    q = _queue(tmp_path)
    assert q.enqueue_many(["a", "b", "a"]) == 2
    assert q.enqueue("a") is False  # already waiting
    job = q.lease("w1")
    assert job is not None and job.key == "a" and job.attempts == 1
    assert q.complete(job)
    assert q.get("a").status is JobStatus.DONE  # type: ignore[union-attr]
    assert q.enqueue("a") is True  # finished -> queued again (the worker decides if it is stale)
    assert q.get("a").attempts == 0  # type: ignore[union-attr]


def test_lease_expiry_hands_job_to_another_worker_and_fences_the_first(tmp_path: Path) -> None:
    q = _queue(tmp_path, lease_s=0.2)
    q.enqueue("a")
    first = q.lease("w1")
    assert first is not None
    assert q.lease("w2") is None  # leased: invisible
    time.sleep(0.3)
    second = q.lease("w2")
    assert second is not None and second.key == "a" and second.attempts == 2
    assert q.complete(first) is False  # its lease ran out: cannot complete someone else's
    assert q.complete(second) is True
    assert q.get("a").status is JobStatus.DONE  # type: ignore[union-attr]


def test_retry_backs_off_then_dead_letters(tmp_path: Path) -> None:
    q = _queue(tmp_path, max_attempts=2, backoff_s=0.3)
    q.enqueue("a")
    job = q.lease()
    assert job is not None
    q.retry(job, {"__type": "InternalServerError", "message": "store down"})
    assert q.lease() is None  # backing off
    waiting = q.get("a")
    assert waiting is not None and waiting.status is JobStatus.QUEUED
    assert waiting.not_before - time.time() == pytest.approx(0.3, abs=0.1)
    time.sleep(0.35)
    job = q.lease()
    assert job is not None and job.attempts == 2
    q.retry(job, {"__type": "InternalServerError", "message": "still down"})
    dead = q.get("a")
    assert dead is not None and dead.status is JobStatus.DEAD
    assert dead.error == {"__type": "InternalServerError", "message": "still down"}
    assert q.stats().counts[JobStatus.DEAD] == 1


def test_expired_lease_on_last_attempt_is_dead_lettered(tmp_path: Path) -> None:
    q = _queue(tmp_path, lease_s=0.05, max_attempts=1)
    q.enqueue("a")
    assert q.lease() is not None
    time.sleep(0.1)
    assert q.lease() is None
    dead = q.get("a")
    assert dead is not None and dead.status is JobStatus.DEAD
    assert "lease expired" in (dead.error or {})["message"]


def test_failed_image_is_not_retried_and_forced_requeue_runs_again(tmp_path: Path) -> None:
    q = _queue(tmp_path)
    q.enqueue_many(["bad", "busy"])
    bad = q.lease()
    busy = q.lease()
    assert bad is not None and busy is not None
    q.complete(bad, failed={"__type": "InvalidImageFormatException", "message": "x"})
    assert q.get("bad").status is JobStatus.FAILED  # type: ignore[union-attr]
    assert q.enqueue("busy", force=True) is False  # in flight: marked to run again
    q.complete(busy)
    assert q.get("busy").status is JobStatus.QUEUED  # type: ignore[union-attr]


def test_stats_and_release_worker(tmp_path: Path) -> None:
    q = _queue(tmp_path)
    q.enqueue_many(["a", "b", "c"])
    job = q.lease("dead-worker")
    assert job is not None
    stats = q.stats()
    assert stats.counts[JobStatus.QUEUED] == 2 and stats.counts[JobStatus.IN_PROGRESS] == 1
    assert stats.oldest_waiting_key == "b"
    assert q.release_worker("dead-worker") == 1
    assert q.stats().counts[JobStatus.QUEUED] == 3
    assert q.stats().to_dict()["oldest_waiting"]["key"] == "a"


def _drain(path: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    q = SqliteJobQueue(path)
    keys = []
    while (job := q.lease()) is not None:
        keys.append(job.key)
        q.complete(job)
    out.put(keys)


def test_processes_never_lease_the_same_job(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    keys = [f"k{i:03d}" for i in range(300)]
    SqliteJobQueue(path).enqueue_many(keys)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_drain, args=(str(path), out)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    leased = [k for keys_of_one in got for k in keys_of_one]
    assert sorted(leased) == keys  # every job once, none twice
