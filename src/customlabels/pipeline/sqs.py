"""The SQS consumer: S3 event notifications from an SQS queue, results written to the bucket.

The shape of the Custom Labels blog's pipeline (S3 → event notification → SQS → worker →
``<image>.json``), with the worker as a long-running process instead of a Lambda function (for
that, see :mod:`customlabels.aws`). Delivery is SQS's own:

- **long polling** (``WaitTimeSeconds`` up to 20 s), one message at a time per process;
- while an image runs, a heartbeat thread keeps the message invisible
  (``ChangeMessageVisibility`` every third of ``visibility_s``), so a slow image is not handed
  to a second worker; a worker killed mid-image stops the heartbeat and the message reappears
  once its visibility timeout runs out;
- the message is **deleted only after** every image it names has its result (or its
  ``.error.json``, for the image's own faults);
- anything else (a store outage outlasting the outage policy, a refused write, a message that
  is not an S3 event) leaves the message in the queue, visible again after a backoff; the queue's
  redrive policy (``maxReceiveCount``) moves a message that keeps failing to its dead-letter
  queue. This consumer never deletes what it could not process.

``s3:TestEvent``, removals, keys outside the prefix and the pipeline's own ``.json`` outputs are
acknowledged (deleted) without work.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customlabels.core.uris import is_s3_uri
from customlabels.errors import InvalidParameterError
from customlabels.pipeline.keys import normalize_prefix
from customlabels.pipeline.retry import OutagePolicy, backoff_delay
from customlabels.pipeline.worker import WorkerOptions, error_record, process_notification

__all__ = ["SqsConsumer", "SqsSettings", "run_sqs_worker"]

log = logging.getLogger(__name__)

MAX_WAIT_S = 20  # SQS's longest long poll
MAX_VISIBILITY_S = 12 * 3600  # SQS's longest visibility timeout


@dataclass
class SqsSettings:
    """What ``customlabels worker --sqs-queue-url`` needs.

    Attributes:
        queue_url: the SQS queue receiving the bucket's S3 event notifications.
        store_url: ``s3://BUCKET``; events for other buckets are acknowledged and ignored.
        model_dir: the model version folder (or exported bundle).
        prefix: only keys under it are inputs (``""``: the whole bucket).
        s3_endpoint_url / sqs_endpoint_url: S3- and SQS-compatible endpoints; None uses
            boto3's configuration (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_SQS``, profiles).
        sse: PutObject encryption (see :func:`~customlabels.storage.s3.sse_params`).
        options: thresholds etc. (see :class:`WorkerOptions`).
        threads: ONNX Runtime intra-op threads.
        wait_s: long-poll wait of one ReceiveMessage, seconds (0–20).
        visibility_s: how long the heartbeat keeps an image's message invisible ahead.
        retry_first_s / retry_max_s: backoff of a message given back after a failure:
            ``min(retry_max_s, retry_first_s * 2**(receives - 1))`` seconds invisible.
        outage: how long a store outage is waited out holding the message.
    """

    queue_url: str
    store_url: str
    model_dir: Path
    prefix: str = ""
    s3_endpoint_url: str | None = None
    sqs_endpoint_url: str | None = None
    sse: dict[str, str] = field(default_factory=dict)
    options: WorkerOptions = field(default_factory=WorkerOptions)
    threads: int = 1
    wait_s: int = MAX_WAIT_S
    visibility_s: int = 60
    retry_first_s: float = 5.0
    retry_max_s: float = 300.0
    outage: OutagePolicy = field(default_factory=OutagePolicy)

    def __post_init__(self) -> None:
        self.prefix = normalize_prefix(self.prefix)
        if not is_s3_uri(self.store_url):
            raise InvalidParameterError(f"--store: expected s3://BUCKET, got {self.store_url!r}")
        if not 0 <= self.wait_s <= MAX_WAIT_S:
            raise InvalidParameterError(f"--wait: expected 0–{MAX_WAIT_S} s, got {self.wait_s}")
        if not 3 <= self.visibility_s <= MAX_VISIBILITY_S:
            raise InvalidParameterError(
                f"--visibility-timeout: expected 3–{MAX_VISIBILITY_S} s, got {self.visibility_s}"
            )


class _Heartbeat:
    """Keeps one message invisible while its images run (a daemon thread)."""

    def __init__(self, client: Any, queue_url: str, receipt: str, visibility_s: int) -> None:
        self.client, self.queue_url, self.receipt = client, queue_url, receipt
        self.visibility_s = visibility_s
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="sqs-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self.done.wait(self.visibility_s / 3):
            try:
                self.client.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=self.receipt,
                    VisibilityTimeout=self.visibility_s,
                )
            except Exception as exc:  # SQS blip: the next beat tries again
                log.warning("visibility extension failed: %s", exc)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.done.set()
        self.thread.join(timeout=30)


class SqsConsumer:
    """One consumer process: the model loaded once, one message at a time.

    Args:
        settings: see :class:`SqsSettings`.
        sqs: a boto3 SQS client (made from the settings when omitted).
        store: the bucket's store (made from the settings when omitted).
        model: a loaded model (loaded from ``settings.model_dir`` when omitted).
    """

    def __init__(
        self, settings: SqsSettings, sqs: Any = None, store: Any = None, model: Any = None
    ) -> None:
        self.settings = settings
        if sqs is None:
            import boto3.session
            from botocore.config import Config

            sqs = boto3.session.Session().client(
                "sqs",
                endpoint_url=settings.sqs_endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 10}),
            )
        if store is None:
            from customlabels.storage import open_store

            store = open_store(
                settings.store_url, endpoint_url=settings.s3_endpoint_url, sse=settings.sse or None
            )
        if model is None:
            from customlabels.pipeline.model import load_model

            model = load_model(settings.model_dir, threads=settings.threads)
        self.sqs, self.store, self.model = sqs, store, model
        self.counts: dict[str, int] = {}

    def _count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def _store_for(self, bucket: str) -> Any:
        return self.store if bucket == self.store.name else None

    def handle(self, message: dict[str, Any], stop: threading.Event | None = None) -> bool:
        """Process one received message; True when it was deleted (done).

        A message that fails is given back: visible again after a backoff that grows with its
        ``ApproximateReceiveCount``, until the redrive policy dead-letters it.
        """
        s = self.settings
        receipt = message["ReceiptHandle"]
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            with _Heartbeat(self.sqs, s.queue_url, receipt, s.visibility_s):
                results = process_notification(
                    message.get("Body", ""),
                    self._store_for,
                    self.model,
                    s.options,
                    s.prefix,
                    s.outage,
                    stop,
                )
        except Exception as exc:
            kind = "poison" if isinstance(exc, InvalidParameterError) else "retry"
            self._count(kind)
            delay = int(backoff_delay(receives - 1, s.retry_first_s, s.retry_max_s))
            error = error_record(exc)
            log.warning(
                "message %s (receive %d) given back for %d s: %s: %s",
                message.get("MessageId"),
                receives,
                delay,
                error["__type"],
                error["message"],
            )
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=s.queue_url, ReceiptHandle=receipt, VisibilityTimeout=delay
                )
            except Exception as sqs_exc:  # it reappears after the queue's own timeout instead
                log.warning("could not set the retry delay: %s", sqs_exc)
            return False
        for result in results:
            self._count(result.outcome.value)
        self.sqs.delete_message(QueueUrl=s.queue_url, ReceiptHandle=receipt)
        self._count("deleted")
        return True

    def poll(self, stop: threading.Event | None = None) -> int:
        """One long poll; returns how many messages were received."""
        response = self.sqs.receive_message(
            QueueUrl=self.settings.queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=self.settings.wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = response.get("Messages", [])
        for message in messages:
            self.handle(message, stop)
        return len(messages)

    def run(self, stop: threading.Event, max_idle_polls: int | None = None) -> dict[str, int]:
        """Poll until ``stop`` (or ``max_idle_polls`` empty polls in a row); returns counts."""
        idle, failures = 0, 0
        log.info(
            "sqs worker ready: model %s, queue %s, store %s",
            self.model.version,
            self.settings.queue_url,
            self.settings.store_url,
        )
        while not stop.is_set():
            try:
                got = self.poll(stop)
            except Exception as exc:  # SQS unreachable: wait and poll again, never exit
                failures += 1
                wait = backoff_delay(failures - 1, 1.0, 30.0)
                log.warning("receive failed (%s), again in %.0f s", exc, wait)
                stop.wait(wait)
                continue
            failures = 0
            idle = 0 if got else idle + 1
            if max_idle_polls is not None and idle >= max_idle_polls:
                break
        return dict(self.counts)


def run_sqs_worker(settings: SqsSettings, stop: threading.Event | None = None) -> dict[str, int]:
    """Run a consumer until SIGTERM/SIGINT (the image in hand is finished first)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.monotonic()
    counts = SqsConsumer(settings).run(stop)
    log.info("sqs worker stopped after %.0f s: %s", time.monotonic() - started, counts)
    return counts
