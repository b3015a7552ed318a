"""The Lambda entry point: S3 event notifications in, ``<key>.json`` beside each image out.

Invocations it accepts (the shapes AWS sends):

- **SQS-triggered** (``Records[].eventSource == "aws:sqs"``, the blog's S3 → SQS → Lambda): each
  record's body is an S3 event document (plain, SNS-wrapped or from EventBridge). Records are
  processed one by one and failures are reported per record (``{"batchItemFailures":
  [{"itemIdentifier": messageId}]}``, with ``ReportBatchItemFailures`` on the event source
  mapping), so one failing message does not bring its whole batch back.
- **S3-triggered** (``Records[].eventSource == "aws:s3"``), **SNS-triggered**
  (``Records[].Sns.Message``), **EventBridge** (``"source": "aws.s3"``) and S3's
  ``s3:TestEvent``: the event itself is the document; an error is raised, so Lambda's
  asynchronous retries and its on-failure destination take over.

Only the image's own faults become ``<key>.error.json``; a store outage is waited out while the
invocation has time left (see :mod:`customlabels.pipeline.retry`), then the record fails.

Configuration (environment variables; the model is loaded once per container):

- ``CUSTOMLABELS_MODEL``: the exported bundle (default ``$LAMBDA_TASK_ROOT/model``);
- ``CUSTOMLABELS_PREFIX``: only keys under it are inputs (default: the whole bucket);
- ``CUSTOMLABELS_SSE`` / ``CUSTOMLABELS_SSE_KMS_KEY_ID``: encryption of the results
  (``aws:kms`` and the key id or ARN);
- ``CUSTOMLABELS_MIN_CONFIDENCE`` (0–100) / ``CUSTOMLABELS_MAX_RESULTS``;
- S3 is reached through boto3's ordinary configuration (the function's role,
  ``AWS_ENDPOINT_URL_S3`` for any S3-compatible store).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customlabels.errors import ConfigError
from customlabels.pipeline.keys import normalize_prefix
from customlabels.pipeline.retry import OutagePolicy
from customlabels.pipeline.worker import (
    ProcessResult,
    WorkerOptions,
    error_record,
    process_notification,
)

__all__ = ["HandlerSettings", "lambda_handler"]

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

# time kept back from an invocation's end to report the batch (seconds)
_MARGIN_S = 5.0


def _number(env: Mapping[str, str], name: str, cast: type[float] | type[int]) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return cast(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a {cast.__name__}, got {raw!r}") from None


@dataclass(frozen=True)
class HandlerSettings:
    """The handler's configuration, read from the environment once per container."""

    model_dir: Path
    prefix: str = ""
    sse: dict[str, str] = field(default_factory=dict)
    options: WorkerOptions = field(default_factory=WorkerOptions)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HandlerSettings:
        """Settings from ``env`` (default ``os.environ``).

        Raises:
            ConfigError, InvalidParameterError: a value that cannot be used (names the variable).
        """
        from customlabels.storage.s3 import sse_params

        env = os.environ if env is None else env
        root = env.get("LAMBDA_TASK_ROOT", "/var/task")
        return cls(
            model_dir=Path(env.get("CUSTOMLABELS_MODEL") or Path(root) / "model"),
            prefix=normalize_prefix(env.get("CUSTOMLABELS_PREFIX", "")),
            sse=sse_params(
                env.get("CUSTOMLABELS_SSE") or None, env.get("CUSTOMLABELS_SSE_KMS_KEY_ID") or None
            ),
            options=WorkerOptions(
                min_confidence=_number(env, "CUSTOMLABELS_MIN_CONFIDENCE", float),
                max_results=_number(env, "CUSTOMLABELS_MAX_RESULTS", int),
            ),
        )


class _Container:
    """What survives between invocations of one Lambda container."""

    settings: HandlerSettings | None = None
    model: Any = None
    stores: dict[str, Any] = {}  # noqa: RUF012 - one cache per container, on purpose

    @classmethod
    def ready(cls) -> _Container:
        if cls.model is None:
            from customlabels.pipeline.model import load_model

            cls.settings = HandlerSettings.from_env()
            cls.model = load_model(cls.settings.model_dir, threads=1)
            log.info("model %s loaded from %s", cls.model.version, cls.settings.model_dir)
        return cls()

    @classmethod
    def reset(cls) -> None:
        """Forget the model and stores (tests change the environment between invocations)."""
        cls.settings, cls.model, cls.stores = None, None, {}

    def store_for(self, bucket: str) -> Any:
        if bucket not in self.stores:
            from customlabels.storage.s3 import S3Store

            settings = self.settings or HandlerSettings.from_env()
            self.stores[bucket] = S3Store(bucket, sse=settings.sse or None)
        return self.stores[bucket]


def _deadline(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return time.monotonic() + max(0.0, remaining() / 1000.0 - _MARGIN_S)


def _process(container: _Container, body: Any, deadline: float | None) -> list[ProcessResult]:
    settings = container.settings
    if settings is None:
        raise ConfigError("handler settings not loaded")
    return process_notification(
        body,
        container.store_for,
        container.model,
        settings.options,
        settings.prefix,
        OutagePolicy(),
        deadline=deadline,
    )


def _summary(results: list[ProcessResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    return counts


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Process the images an invocation names (see the module for the event shapes).

    Returns:
        For SQS: ``{"batchItemFailures": [{"itemIdentifier": id}, ...]}`` (the messages to
        redeliver). Otherwise: ``{"results": {outcome: count}}``.

    Raises:
        Exception: a non-SQS invocation that could not be processed (Lambda retries it).
    """
    container = _Container.ready()
    deadline = _deadline(context)
    records = event.get("Records") if isinstance(event, dict) else None
    first = records[0] if isinstance(records, list) and records else None
    if isinstance(first, dict) and first.get("eventSource") == "aws:sqs":
        failures: list[dict[str, str]] = []
        results: list[ProcessResult] = []
        batch: list[dict[str, Any]] = list(records or [])
        for record in batch:
            try:
                results += _process(container, record["body"], deadline)
            except Exception as exc:
                error = error_record(exc)
                log.warning(
                    "message %s failed: %s: %s",
                    record.get("messageId"),
                    error["__type"],
                    error["message"],
                )
                failures.append({"itemIdentifier": str(record.get("messageId", ""))})
        log.info("batch of %d: %s, %d failed", len(batch), _summary(results), len(failures))
        return {"batchItemFailures": failures}
    results = _process(container, event, deadline)
    log.info("invocation: %s", _summary(results))
    return {"results": _summary(results)}
