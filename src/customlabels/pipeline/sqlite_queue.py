"""A durable job queue in one SQLite file (WAL): leases, retries with backoff, dead letters.

Why not a library: persist-queue's ``SQLiteAckQueue`` only puts unacknowledged items back when
the queue is reopened (no lease expiry while other processes run); litequeue marks messages
``LOCKED`` but leaves expiry, attempt counts, backoff and dead letters to the caller; huey
removes a task from its SQLite storage when a worker takes it, so a SIGKILLed worker loses it.
This module is the small table those libraries lack: one row per image key (so duplicate events
collapse), leased with ``BEGIN IMMEDIATE`` so two processes never take the same row.

Delivery is at least once (a lease that runs out is handed to another worker); results are
written idempotently by the worker, which makes them effectively exactly once.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customlabels.pipeline.job import Job, JobStatus
from customlabels.pipeline.retry import backoff_delay

__all__ = ["QueueConfig", "QueueStats", "SqliteJobQueue", "worker_id"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    enqueued_at REAL NOT NULL,
    not_before  REAL NOT NULL,
    lease_until REAL,
    lease_token TEXT,
    worker      TEXT,
    error       TEXT,
    again       INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (status, not_before);
"""
_FINISHED = (JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.DEAD.value)


def worker_id() -> str:
    """``host:pid`` of the calling process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class QueueConfig:
    """Delivery settings.

    Attributes:
        lease_s: visibility timeout: a leased job not completed within this many seconds is
            handed to another worker (its holder is presumed dead).
        max_attempts: deliveries before a job becomes a dead letter.
        backoff_s / backoff_max_s: retry ``n`` waits ``min(backoff_max_s, backoff_s * 2**(n-1))``
            (:func:`~customlabels.pipeline.retry.backoff_delay`).
    """

    lease_s: float = 300.0
    max_attempts: int = 3
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0


@dataclass(frozen=True)
class QueueStats:
    counts: dict[JobStatus, int]
    oldest_waiting_key: str | None
    oldest_waiting_age_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": {status.value: n for status, n in self.counts.items()},
            "oldest_waiting": None
            if self.oldest_waiting_key is None
            else {
                "key": self.oldest_waiting_key,
                "age_s": round(self.oldest_waiting_age_s or 0, 3),
            },
        }


def _row_to_job(row: sqlite3.Row) -> Job:
    data = dict(row)
    data["error"] = json.loads(data["error"]) if data["error"] else None
    data.pop("again", None)
    data.pop("updated_at", None)
    return Job.from_dict(data)


class SqliteJobQueue:
    """The job table; one instance per process (each opens its own connection).

    Args:
        path: the SQLite file (created with its folder).
        config: lease, retry and dead-letter settings.
    """

    def __init__(self, path: Path | str, config: QueueConfig | None = None) -> None:
        self.path = Path(path)
        self.config = config or QueueConfig()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # Switching to WAL takes an exclusive lock and does not wait on the busy timeout: a
        # queue opened while another process works in it is already in WAL, so only a new
        # file is switched (seen: "database is locked" when a supervisor restarted beside a
        # worker).
        if str(self._db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    # producers -------------------------------------------------------------------------------

    def enqueue(self, key: str, force: bool = False) -> bool:
        """Queue ``key``; True when it was not already waiting. See :meth:`enqueue_many`."""
        return self.enqueue_many([key], force=force) == 1

    def enqueue_many(self, keys: Iterable[str], force: bool = False) -> int:
        """Queue keys in one transaction; returns how many became newly QUEUED.

        A key already QUEUED stays as it is; a finished one (DONE/FAILED/DEAD) is queued again
        (the worker skips it cheaply if its result is current). ``force`` (the file changed while
        a worker held it) also marks an IN_PROGRESS job to run once more when it completes.
        """
        now = time.time()
        added = 0
        self._begin()
        try:
            for key in keys:
                row = self._db.execute("SELECT status FROM jobs WHERE key = ?", (key,)).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO jobs (key, status, enqueued_at, not_before, updated_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (key, JobStatus.QUEUED.value, now, now, now),
                    )
                    added += 1
                elif row["status"] in _FINISHED:
                    self._db.execute(
                        "UPDATE jobs SET status = ?, attempts = 0, enqueued_at = ?, not_before = ?,"
                        " lease_until = NULL, lease_token = NULL, worker = NULL, error = NULL,"
                        " again = 0, updated_at = ? WHERE key = ?",
                        (JobStatus.QUEUED.value, now, now, now, key),
                    )
                    added += 1
                elif force and row["status"] == JobStatus.IN_PROGRESS.value:
                    self._db.execute("UPDATE jobs SET again = 1 WHERE key = ?", (key,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return added

    # consumers -------------------------------------------------------------------------------

    def lease(self, worker: str | None = None) -> Job | None:
        """Take the oldest ready job for ``config.lease_s`` seconds, or None.

        Ready: QUEUED with ``not_before`` passed, or IN_PROGRESS with an expired lease (its
        worker died). A job whose lease expired on its last allowed attempt becomes DEAD.
        """
        now = time.time()
        worker = worker or worker_id()
        self._begin()
        try:
            while True:
                row = self._db.execute(
                    "SELECT * FROM jobs WHERE (status = ? AND not_before <= ?)"
                    " OR (status = ? AND lease_until < ?) ORDER BY not_before, id LIMIT 1",
                    (JobStatus.QUEUED.value, now, JobStatus.IN_PROGRESS.value, now),
                ).fetchone()
                if row is None:
                    self._db.execute("COMMIT")
                    return None
                expired = row["status"] == JobStatus.IN_PROGRESS.value
                if expired and row["attempts"] >= self.config.max_attempts:
                    error = {
                        "__type": "InternalServerError",
                        "message": f"lease expired on attempt {row['attempts']} of "
                        f"{self.config.max_attempts} (worker {row['worker']} died or hung)",
                    }
                    self._db.execute(
                        "UPDATE jobs SET status = ?, error = ?, lease_until = NULL,"
                        " lease_token = NULL, updated_at = ? WHERE id = ?",
                        (JobStatus.DEAD.value, json.dumps(error), now, row["id"]),
                    )
                    continue
                token = uuid.uuid4().hex
                self._db.execute(
                    "UPDATE jobs SET status = ?, attempts = attempts + 1, lease_until = ?,"
                    " lease_token = ?, worker = ?, updated_at = ? WHERE id = ?",
                    (
                        JobStatus.IN_PROGRESS.value,
                        now + self.config.lease_s,
                        token,
                        worker,
                        now,
                        row["id"],
                    ),
                )
                leased = self._db.execute(
                    "SELECT * FROM jobs WHERE id = ?", (row["id"],)
                ).fetchone()
                self._db.execute("COMMIT")
                return _row_to_job(leased)
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _finish(self, job: Job, status: JobStatus, error: dict[str, str] | None) -> bool:
        now = time.time()
        self._begin()
        try:
            row = self._db.execute(
                "SELECT again FROM jobs WHERE id = ? AND lease_token = ?", (job.id, job.lease_token)
            ).fetchone()
            if row is None:  # our lease ran out and someone else holds the job now
                self._db.execute("COMMIT")
                return False
            if row["again"] and status is not JobStatus.QUEUED:
                status, error = JobStatus.QUEUED, None
                self._db.execute("UPDATE jobs SET attempts = 0 WHERE id = ?", (job.id,))
            not_before = now
            if status is JobStatus.QUEUED and error is not None:
                not_before = now + backoff_delay(
                    job.attempts - 1, self.config.backoff_s, self.config.backoff_max_s
                )
            self._db.execute(
                "UPDATE jobs SET status = ?, error = ?, not_before = ?, lease_until = NULL,"
                " lease_token = NULL, again = 0, updated_at = ? WHERE id = ?",
                (status.value, json.dumps(error) if error else None, not_before, now, job.id),
            )
            self._db.execute("COMMIT")
            return True
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def complete(self, job: Job, failed: dict[str, str] | None = None) -> bool:
        """Finish a leased job: DONE, or FAILED with ``failed`` (a bad image: no retry).

        Returns False when the lease was lost (another worker now holds the job).
        """
        return self._finish(job, JobStatus.FAILED if failed else JobStatus.DONE, failed)

    def retry(self, job: Job, error: dict[str, str]) -> bool:
        """Give a leased job back after a transient error: QUEUED after a backoff, or DEAD."""
        if job.attempts >= self.config.max_attempts:
            return self._finish(job, JobStatus.DEAD, error)
        return self._finish(job, JobStatus.QUEUED, error)

    def release_worker(self, worker: str) -> int:
        """Hand back every job leased by a worker known to be dead (faster than lease expiry)."""
        now = time.time()
        cur = self._db.execute(
            "UPDATE jobs SET status = ?, lease_until = NULL, lease_token = NULL, not_before = ?,"
            " updated_at = ? WHERE status = ? AND worker = ?",
            (JobStatus.QUEUED.value, now, now, JobStatus.IN_PROGRESS.value, worker),
        )
        return cur.rowcount

    def leased_workers(self) -> set[str]:
        """Workers holding a lease now (``host:pid``)."""
        rows = self._db.execute(
            "SELECT DISTINCT worker FROM jobs WHERE status = ?", (JobStatus.IN_PROGRESS.value,)
        ).fetchall()
        return {r[0] for r in rows if r[0]}

    # inspection ------------------------------------------------------------------------------

    def get(self, key: str) -> Job | None:
        row = self._db.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
        return None if row is None else _row_to_job(row)

    def jobs(self, status: JobStatus | None = None) -> list[Job]:
        if status is None:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE status = ? ORDER BY id", (status.value,)
            ).fetchall()
        return [_row_to_job(r) for r in rows]

    def stats(self) -> QueueStats:
        counts = dict.fromkeys(JobStatus, 0)
        for row in self._db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status"):
            counts[JobStatus(row["status"])] = int(row["n"])
        oldest = self._db.execute(
            "SELECT key, enqueued_at FROM jobs WHERE status = ? ORDER BY enqueued_at, id LIMIT 1",
            (JobStatus.QUEUED.value,),
        ).fetchone()
        if oldest is None:
            return QueueStats(counts, None, None)
        return QueueStats(counts, oldest["key"], max(0.0, time.time() - oldest["enqueued_at"]))

    def pending(self) -> int:
        """Jobs not finished yet (QUEUED or IN_PROGRESS)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)",
            (JobStatus.QUEUED.value, JobStatus.IN_PROGRESS.value),
        ).fetchone()
        return int(row[0])
