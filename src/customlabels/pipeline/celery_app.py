"""Distributed workers: Celery over Redis (or RabbitMQ), the same worker function as embedded.

Delivery settings that make a killed worker's job go to another one: ``task_acks_late`` (the
message is acknowledged after the task returns), ``task_reject_on_worker_lost`` (a pool process
killed mid-task puts its message back), ``worker_prefetch_multiplier=1`` (a worker holds one
message beyond the one it runs, none hidden behind a busy process). If a whole worker machine
dies, Redis redelivers its unacknowledged message after the transport's ``visibility_timeout``.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init

from customlabels.core.uris import is_s3_uri
from customlabels.errors import ConfigError
from customlabels.pipeline.job import ImageMessage
from customlabels.pipeline.retry import OutagePolicy, backoff_delay, through_outages
from customlabels.pipeline.worker import WorkerOptions, error_record, process_image

__all__ = [
    "QUEUE_NAME",
    "TASK_NAME",
    "WorkerSettings",
    "create_app",
    "new_app",
    "run_worker",
    "send_job",
    "worker_argv",
]

log = logging.getLogger(__name__)

QUEUE_NAME = "customlabels"
TASK_NAME = "customlabels.detect"


@dataclass
class WorkerSettings:
    """What ``customlabels worker`` needs besides the broker.

    Attributes:
        store_url: ``s3://BUCKET`` (or a folder shared by every worker).
        model_dir: the model version folder, present on each worker machine.
        s3_endpoint_url: for S3-compatible stores (SeaweedFS, MinIO).
        sse: server-side encryption passed to PutObject, e.g. ``{"ServerSideEncryption":
            "aws:kms", "SSEKMSKeyId": "..."}``.
        options: thresholds etc. (see :class:`WorkerOptions`).
        threads: ONNX Runtime intra-op threads per worker process.
        outage: a store outage is waited out inside the task first (the message stays
            unacknowledged), see :func:`~customlabels.pipeline.retry.through_outages`.
        max_retries / backoff_s: then the task is retried with exponential backoff, and
            recorded as a dead letter after ``max_retries``. Image faults are never retried.
        ledger_url: the Redis of the pipeline ledger (default: the broker, if a Redis).
    """

    store_url: str
    model_dir: Path
    s3_endpoint_url: str | None = None
    sse: dict[str, str] = field(default_factory=dict)
    options: WorkerOptions = field(default_factory=WorkerOptions)
    threads: int = 1
    outage: OutagePolicy = field(default_factory=OutagePolicy)
    max_retries: int = 3
    backoff_s: float = 1.0
    ledger_url: str | None = None


class _Context:
    """Per worker process: store, model (loaded once) and ledger."""

    settings: WorkerSettings | None = None
    broker: str = ""
    store: Any = None
    model: Any = None
    ledger: Any = None

    @classmethod
    def ready(cls) -> _Context:
        if cls.settings is None:
            raise ConfigError("worker settings not configured (use `customlabels worker`)")
        if cls.model is None:
            from customlabels.pipeline.model import load_model
            from customlabels.storage import open_store

            s = cls.settings
            opts: dict[str, Any] = {}
            if is_s3_uri(s.store_url):
                opts = {"endpoint_url": s.s3_endpoint_url, "sse": s.sse or None}
            cls.store = open_store(s.store_url, **opts)
            cls.model = load_model(s.model_dir, threads=s.threads)
            cls.ledger = _ledger_for(cls.broker, s.ledger_url, cls.store.name)
            log.info("worker process ready: model %s on %s", cls.model.version, s.store_url)
        return cls()


def _ledger_for(broker: str, ledger_url: str | None, bucket: str) -> Any:
    import redis

    from customlabels.pipeline.ledger import Ledger, ledger_url_for

    return Ledger(redis.Redis.from_url(ledger_url_for(broker, ledger_url)), bucket)


@worker_process_init.connect
def _load_in_child(**_: Any) -> None:
    if _Context.settings is not None:
        _Context.ready()


def _detect(task: Task, message: dict[str, Any]) -> str:
    ctx = _Context.ready()
    msg = ImageMessage.from_dict(message)
    key = msg.key
    settings = ctx.settings
    if settings is None:  # ready() raised already; this keeps the type checker informed
        raise ConfigError("worker settings missing")
    if msg.bucket != ctx.store.name:
        log.warning("ignoring %s: bucket %s is not this worker's", key, msg.bucket)
        return "IGNORED"
    if ctx.ledger:
        ctx.ledger.started(key)
    try:
        result = through_outages(
            functools.partial(process_image, ctx.store, key, ctx.model, settings.options),
            settings.outage,
            what=key,
        )
    except Exception as exc:
        error = error_record(exc)
        if task.request.retries >= settings.max_retries:
            log.error("dead letter %s: %s", key, error["message"])
            if ctx.ledger:
                ctx.ledger.dead(key, error)
            return "DEAD"
        if ctx.ledger:
            ctx.ledger.retrying(key)
        delay = backoff_delay(task.request.retries, settings.backoff_s, settings.outage.max_s)
        raise task.retry(exc=exc, countdown=delay) from exc
    if ctx.ledger:
        ctx.ledger.finished(key, result.outcome.value)
    return result.outcome.value


def new_app(name: str, broker: str, queue: str, visibility_timeout_s: float, **conf: Any) -> Celery:
    """A Celery app with the delivery settings every customlabels queue shares: one message at
    a time per worker process, acknowledged late, JSON only, no results, the broker retried at
    start; ``conf`` adds or overrides (e.g. ``task_reject_on_worker_lost``)."""
    app = Celery(name, broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": visibility_timeout_s},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        **conf,
    )
    return app


def worker_argv(queue: str, name: str, concurrency: int, loglevel: str) -> list[str]:
    """``worker_main`` arguments of a prefork worker of ``queue``, named ``name-PID@HOST``."""
    return [
        "worker",
        f"--loglevel={loglevel}",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        "-Q",
        queue,
        "-n",
        f"{name}-{os.getpid()}@{socket.gethostname()}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def create_app(broker: str, visibility_timeout_s: float = 3600.0) -> Celery:
    """A Celery app with the pipeline's delivery settings and its one task.

    Args:
        broker: ``redis://HOST:6379/0`` or ``amqp://...``.
        visibility_timeout_s: Redis only: an unacknowledged message (its worker machine died)
            is delivered again after this long. Keep it above the longest job.
    """
    app = new_app(
        "customlabels", broker, QUEUE_NAME, visibility_timeout_s, task_reject_on_worker_lost=True
    )
    app.task(name=TASK_NAME, bind=True, max_retries=None)(_detect)
    return app


def send_job(app: Celery, bucket: str, key: str, etag: str | None) -> None:
    """Queue one image: the message carries its bucket, key and ETag, never its bytes."""
    app.send_task(TASK_NAME, args=[ImageMessage(bucket, key, etag).to_dict()], queue=QUEUE_NAME)


def run_worker(
    broker: str,
    settings: WorkerSettings,
    concurrency: int = 1,
    visibility_timeout_s: float = 3600.0,
    loglevel: str = "INFO",
) -> None:
    """Run a Celery worker (prefork pool of ``concurrency`` processes) until stopped."""
    from customlabels.pipeline.ledger import ledger_url_for

    ledger_url_for(broker, settings.ledger_url)  # refuse a bad configuration before starting
    _Context.settings = settings
    _Context.broker = broker
    app = create_app(broker, visibility_timeout_s)
    app.worker_main(argv=worker_argv(QUEUE_NAME, "customlabels", concurrency, loglevel))
