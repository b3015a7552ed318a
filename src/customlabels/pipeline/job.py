"""A pipeline job: one image key to run the model on, as a plain dataclass.

Jobs carry keys, never image bytes. ``to_dict``/``from_dict`` are the only serialization: the
SQLite queue stores a :class:`Job`'s fields as columns; a Celery message is an
:class:`ImageMessage` (bucket, key, ETag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from customlabels.errors import InvalidParameterError

__all__ = ["ImageMessage", "Job", "JobStatus"]


class JobStatus(StrEnum):
    """Where a job is in its life.

    ``QUEUED`` (waiting, possibly until ``not_before`` after a retry), ``IN_PROGRESS`` (leased by
    a worker until ``lease_until``), ``DONE`` (result written or already current), ``FAILED``
    (the image is bad: ``<key>.error.json`` written, never retried), ``DEAD`` (dead letter: every
    attempt failed for another reason; ``error`` says why).
    """

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    FAILED = "FAILED"
    DEAD = "DEAD"


@dataclass
class Job:
    """One image to process.

    Attributes:
        key: the image's object key in the bucket (``/``-separated, not URL-encoded).
        id: queue row id (0 before it is stored).
        status: see :class:`JobStatus`.
        attempts: deliveries so far (a lease counts as an attempt).
        enqueued_at / not_before / lease_until: Unix seconds; ``lease_until`` only while leased.
        lease_token: fences a worker whose lease ran out from completing someone else's lease.
        worker: who holds the lease (``host:pid``).
        error: the last error (``{"__type", "message"}``) for FAILED / DEAD / retried jobs.
    """

    key: str
    id: int = 0
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    enqueued_at: float = 0.0
    not_before: float = 0.0
    lease_until: float | None = None
    lease_token: str | None = None
    worker: str | None = None
    error: dict[str, str] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "id": self.id,
            "status": self.status.value,
            "attempts": self.attempts,
            "enqueued_at": self.enqueued_at,
            "not_before": self.not_before,
            "lease_until": self.lease_until,
            "lease_token": self.lease_token,
            "worker": self.worker,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        try:
            key = data["key"]
            if not isinstance(key, str) or not key:
                raise ValueError(f"key: expected a non-empty string, got {key!r}")
            return cls(
                key=key,
                id=int(data.get("id", 0)),
                status=JobStatus(data.get("status", JobStatus.QUEUED.value)),
                attempts=int(data.get("attempts", 0)),
                enqueued_at=float(data.get("enqueued_at", 0.0)),
                not_before=float(data.get("not_before", 0.0)),
                lease_until=None if data.get("lease_until") is None else float(data["lease_until"]),
                lease_token=data.get("lease_token"),
                worker=data.get("worker"),
                error=data.get("error"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameterError(f"job: not a valid job record ({exc})") from None


@dataclass(frozen=True)
class ImageMessage:
    """The body of a scale-out task: which object to process, never its bytes.

    Attributes:
        bucket: the bucket the dispatcher watches (a worker for another bucket ignores it).
        key: object key, decoded.
        etag: the ETag seen when dispatched (None if the event had none).
    """

    bucket: str
    key: str
    etag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "etag": self.etag}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageMessage:
        try:
            bucket, key = data["bucket"], data["key"]
            if not isinstance(bucket, str) or not isinstance(key, str) or not key:
                raise ValueError(f"expected string bucket and key, got {bucket!r}, {key!r}")
            etag = data.get("etag")
            return cls(bucket, key, None if etag is None else str(etag))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameterError(
                f"task message: not a valid image message ({exc})"
            ) from None
