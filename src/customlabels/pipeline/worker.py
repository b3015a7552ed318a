"""The one worker function every mode runs: one image key in, ``<key>.json`` or an error out.

The embedded mode calls :func:`process_image` from processes leasing jobs from the SQLite queue;
the Celery task, the SQS consumer and the Lambda handler call it too. Only the queue and the
store adapters differ. Only the image's own faults (:data:`~customlabels.errors.IMAGE_FAULTS`)
become ``<key>.error.json``; everything else is raised for the caller to retry.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from customlabels.errors import (
    IMAGE_FAULTS,
    CustomLabelsError,
    ImageTooLargeError,
    InvalidS3ObjectError,
)
from customlabels.inference.response import check_request_limits
from customlabels.pipeline.events import parse_s3_event
from customlabels.pipeline.keys import error_key, is_input, result_key
from customlabels.pipeline.model import LoadedModel
from customlabels.pipeline.retry import OutagePolicy, through_outages
from customlabels.storage.base import ObjectInfo, ObjectStore

__all__ = [
    "Outcome",
    "ProcessResult",
    "WorkerOptions",
    "error_record",
    "process_image",
    "process_notification",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs the model.

    Attributes:
        min_confidence: 0–100 for every label; None applies each label's assumed threshold.
        max_results: keep at most this many labels per image (None: all).
        delay_s: pause after taking a job and before detecting. Zero in production; crash tests
            and demos use it to have a job in flight long enough to kill its worker.
    """

    min_confidence: float | None = None
    max_results: int | None = None
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        check_request_limits(self.min_confidence, self.max_results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_confidence": self.min_confidence,
            "max_results": self.max_results,
            "delay_s": self.delay_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerOptions:
        return cls(
            min_confidence=data.get("min_confidence"),
            max_results=data.get("max_results"),
            delay_s=float(data.get("delay_s", 0.0)),
        )


class Outcome(StrEnum):
    WRITTEN = "WRITTEN"  # <key>.json written
    SKIPPED = "SKIPPED"  # a current result (same model version, same content) already exists
    FAILED = "FAILED"  # bad image: <key>.error.json written
    GONE = "GONE"  # the image was deleted before its turn


@dataclass(frozen=True)
class ProcessResult:
    key: str
    outcome: Outcome
    seconds: float
    error: dict[str, str] | None = None


def error_record(exc: BaseException) -> dict[str, str]:
    """``{"__type", "message"}`` of a job that failed for a reason other than its image.

    What the queues keep as a retried or dead job's last error; the service's exception name
    for errors of this tree, ``InternalServerError`` with the exception's class otherwise.
    """
    if isinstance(exc, CustomLabelsError):
        return exc.to_dict()
    return {"__type": "InternalServerError", "message": f"{type(exc).__name__}: {exc}"}


def _read_json(store: ObjectStore, key: str) -> dict[str, Any] | None:
    if store.head(key) is None:
        return None
    try:
        doc = json.loads(store.get(key))
    except (InvalidS3ObjectError, ValueError):
        return None  # gone meanwhile, or unreadable: recompute it (an outage is raised)
    return doc if isinstance(doc, dict) else None


def _is_current(doc: dict[str, Any] | None, version: str, etag: str | None) -> bool:
    if doc is None or etag is None:
        return False
    image = doc.get("Image") or {}
    return doc.get("ModelVersion") == version and image.get("ETag") == etag


def _image_doc(store: ObjectStore, info: ObjectInfo) -> dict[str, Any]:
    return {"Bucket": store.name, "Name": info.key, "ETag": info.etag, "Size": info.size}


def _dump(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode()


def process_image(
    store: ObjectStore, key: str, model: LoadedModel, options: WorkerOptions | None = None
) -> ProcessResult:
    """Run the model on ``key`` and write its result beside it, idempotently.

    Writes ``<key>.json``: the DetectCustomLabels response (``CustomLabels``, confidences
    0–100) plus ``Image`` (bucket, key, ETag, size), ``ModelVersion``, the threshold used
    (``MinConfidence``, or the per-label assumed ``Thresholds`` in 0–100 when it is None),
    ``ProcessingTimeMs`` and ``ProcessedAt``. A bad image gets ``<key>.error.json`` with
    ``Error: {__type, message}`` (the service's exception name) instead: only for the image's
    own faults (:data:`~customlabels.errors.IMAGE_FAULTS`: not an image, truncated, too large,
    missing object). Nothing is written when a result for the same model version and the same
    image ETag exists.

    Raises:
        StoreUnavailableError: the store is down or throttling: retry later (see
            :func:`~customlabels.pipeline.retry.through_outages`); nothing was written.
        Exception: anything else that is not the image's fault (a refused write, a model
            crash): the caller retries the job, and its queue dead-letters it in the end.
    """
    options = options or WorkerOptions()
    t0 = time.perf_counter()
    info = store.head(key, with_etag=True)
    if info is None:
        log.info("gone %s", key)
        return ProcessResult(key, Outcome.GONE, time.perf_counter() - t0)
    if _is_current(_read_json(store, result_key(key)), model.version, info.etag) or _is_current(
        _read_json(store, error_key(key)), model.version, info.etag
    ):
        log.info("skipped %s (result current)", key)
        return ProcessResult(key, Outcome.SKIPPED, time.perf_counter() - t0)
    if options.delay_s > 0:
        time.sleep(options.delay_s)
    t1 = time.perf_counter()
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    try:
        if info.size > model.limits.max_bytes:
            raise ImageTooLargeError(
                f"{store.url(key)}: {info.size} bytes, over the limit of {model.limits.max_bytes}"
            )
        data = store.get(key)
        response = model.detect(data, store.url(key), options.min_confidence, options.max_results)
    except IMAGE_FAULTS as exc:
        err = exc.to_dict()
        err_doc: dict[str, Any] = {
            "Error": err,
            "Image": _image_doc(store, info),
            "ModelVersion": model.version,
            "ProcessedAt": now,
        }
        store.put(error_key(key), _dump(err_doc))
        if store.head(result_key(key)) is not None:
            store.delete(result_key(key))  # a result for the image's earlier content
        log.info("failed %s: %s", key, err["__type"])
        return ProcessResult(key, Outcome.FAILED, time.perf_counter() - t0, err)
    thresholds = (
        {name: round(model.card.threshold_for(name) * 100.0, 4) for name in model.card.labels}
        if options.min_confidence is None
        else None
    )
    doc: dict[str, Any] = {
        "CustomLabels": response["CustomLabels"],
        "Image": _image_doc(store, info),
        "ModelVersion": model.version,
        "MinConfidence": options.min_confidence,
        "Thresholds": thresholds,
        "ProcessingTimeMs": round((time.perf_counter() - t1) * 1000.0, 2),
        "ProcessedAt": now,
    }
    store.put(result_key(key), _dump(doc))
    if store.head(error_key(key)) is not None:
        store.delete(error_key(key))  # the image was fixed
    log.info("wrote %s", result_key(key))
    return ProcessResult(key, Outcome.WRITTEN, time.perf_counter() - t0)


def process_notification(
    body: str | bytes | dict[str, Any],
    store_for: Callable[[str], ObjectStore | None],
    model: LoadedModel,
    options: WorkerOptions,
    prefix: str,
    outage: OutagePolicy,
    stop: threading.Event | None = None,
    deadline: float | None = None,
) -> list[ProcessResult]:
    """Run :func:`process_image` on every input an S3 event document names.

    What an SQS message or a Lambda invocation carries (see
    :func:`~customlabels.pipeline.events.parse_s3_event` for the shapes). A test event, removals,
    keys outside ``prefix`` and the pipeline's own ``.json`` outputs give no result.

    Args:
        body: the event document (JSON text or parsed).
        store_for: the store of a bucket named by the event, or None to ignore that bucket.
        prefix: normalized input prefix (``""``: the whole bucket).
        outage / stop / deadline: how a store outage is waited out (see
            :func:`~customlabels.pipeline.retry.through_outages`).

    Raises:
        InvalidParameterError: not an S3 event document (a poison message).
        StoreUnavailableError, Exception: as :func:`process_image`; the message must stay in
            its queue (images done before the failure are skipped when it comes back).
    """
    results: list[ProcessResult] = []
    for event in parse_s3_event(body):
        store = store_for(event.bucket)
        if store is None:
            log.info("ignoring s3://%s/%s: not this worker's bucket", event.bucket, event.key)
            continue
        if not is_input(event.key, prefix):
            log.debug("ignoring %s: not an input under %r", event.key, prefix)
            continue
        work = functools.partial(process_image, store, event.key, model, options)
        results.append(through_outages(work, outage, stop, deadline, what=event.key))
    return results
