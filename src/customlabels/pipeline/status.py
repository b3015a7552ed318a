"""``customlabels pipeline status``: one report shape for both modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from customlabels.core.uris import s3_bucket_of
from customlabels.errors import InvalidParameterError

__all__ = ["embedded_status", "render_status", "scaleout_status"]


def embedded_status(bucket: Path | None, state_dir: Path | None = None) -> dict[str, Any]:
    """Counts by status and the oldest waiting job, from the embedded queue file."""
    from customlabels.pipeline.embedded import QUEUE_FILE, default_state_dir
    from customlabels.pipeline.job import JobStatus
    from customlabels.pipeline.sqlite_queue import SqliteJobQueue

    folder = state_dir or default_state_dir(Path(bucket or "."))
    path = folder / QUEUE_FILE
    if not path.is_file():
        raise InvalidParameterError(f"{path}: no pipeline queue here (has `pipeline run` started?)")
    queue = SqliteJobQueue(path)
    try:
        report = queue.stats().to_dict()
        report["dead_letters"] = [
            {"key": j.key, "attempts": j.attempts, "error": j.error}
            for j in queue.jobs(JobStatus.DEAD)
        ][:20]
    finally:
        queue.close()
    report["mode"] = "embedded"
    report["queue"] = str(path)
    return report


def scaleout_status(broker: str, store_url: str, ledger_url: str | None = None) -> dict[str, Any]:
    """Counts from the Redis ledger, plus the broker's own queue length for a Redis broker."""
    import redis

    from customlabels.pipeline.celery_app import QUEUE_NAME
    from customlabels.pipeline.ledger import Ledger, ledger_url_for

    bucket = s3_bucket_of(store_url) or Path(store_url).name
    client = redis.Redis.from_url(ledger_url_for(broker, ledger_url))
    report = Ledger(client, bucket).stats()
    report["mode"] = "celery"
    if broker.startswith(("redis://", "rediss://")):
        report["broker_queue_length"] = int(redis.Redis.from_url(broker).llen(QUEUE_NAME))
    return report


def render_status(report: dict[str, Any]) -> str:
    counts = report["counts"]
    lines = [
        f"mode: {report['mode']}",
        "queued: {QUEUED}  in progress: {IN_PROGRESS}  done: {DONE}  failed: {FAILED}  "
        "dead: {DEAD}".format(**counts),
    ]
    oldest = report.get("oldest_waiting")
    lines.append(
        "oldest waiting: none"
        if not oldest
        else f"oldest waiting: {oldest['key']} ({oldest['age_s']:.1f} s)"
    )
    for dead in report.get("dead_letters", []):
        lines.append(f"dead letter: {dead['key']}: {dead['error']}")
    return "\n".join(lines)
