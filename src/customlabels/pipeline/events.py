"""Object-created events from outside: the AWS S3 event JSON, and a Redis list that carries it.

AWS S3 (through SQS/SNS/Lambda), MinIO and the JuiceFS gateway publish the same document:
``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": ...},
"object": {"key": <URL-encoded, + for space>, "eTag": ..., "size": ...}}}]}``. MinIO's Redis
target pushes it onto a list (``format=access``). :func:`parse_s3_event` also unwraps what
carries it on AWS: an SNS envelope (``{"Type": "Notification", "Message": "<json>"}``, what an
SNS topic delivers to SQS), SNS records of a Lambda invocation (``Records[].Sns.Message``), and
S3's EventBridge event (``"source": "aws.s3", "detail-type": "Object Created"``, whose key is
not URL-encoded). S3's ``s3:TestEvent`` (sent when a notification is configured) holds no object.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from customlabels.errors import InvalidParameterError

__all__ = ["ObjectEvent", "RedisListSource", "parse_s3_event"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObjectEvent:
    """One created object: ``key`` decoded (spaces, unicode), ``etag`` without quotes if sent."""

    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None


def _eventbridge_record(doc: dict[str, Any]) -> list[Any]:
    """S3's EventBridge event as one S3 record (keys there are plain, so encoded here)."""
    if doc.get("detail-type") != "Object Created":
        return []
    detail = doc.get("detail")
    if not isinstance(detail, dict):
        raise InvalidParameterError("S3 EventBridge event: expected a 'detail' object")
    obj = detail.get("object") or {}
    key = obj.get("key") if isinstance(obj, dict) else None
    if not isinstance(key, str):
        raise InvalidParameterError("S3 EventBridge event: detail.object.key missing")
    return [
        {
            "eventName": "ObjectCreated:" + str(detail.get("reason") or "Put"),
            "s3": {
                "bucket": detail.get("bucket"),
                "object": {
                    "key": quote_plus(key, safe="/"),
                    "eTag": obj.get("etag"),
                    "size": obj.get("size"),
                },
            },
        }
    ]


def _records(doc: Any) -> list[Any]:
    if isinstance(doc, list):  # MinIO's Redis "access" format: [{"Event": [...], "EventTime"}]
        out: list[Any] = []
        for item in doc:
            if isinstance(item, dict) and isinstance(item.get("Event"), list):
                out.extend(item["Event"])
            else:
                out.extend(_records(item))
        return out
    if not isinstance(doc, dict):
        raise InvalidParameterError(f"S3 event: expected a JSON object, got {type(doc).__name__}")
    if "Message" in doc and "Records" not in doc and isinstance(doc["Message"], str):
        return _records(_loads(doc["Message"]))  # SNS envelope
    if doc.get("source") == "aws.s3" and "detail" in doc:
        return _eventbridge_record(doc)
    records = doc.get("Records")
    if records is None:
        if doc.get("Event") == "s3:TestEvent":
            return []
        raise InvalidParameterError("S3 event: expected a 'Records' list, got none")
    if not isinstance(records, list):
        raise InvalidParameterError(
            f"S3 event: 'Records' must be a list, got {type(records).__name__}"
        )
    out = []
    for rec in records:
        sns = rec.get("Sns") if isinstance(rec, dict) else None
        if isinstance(sns, dict) and isinstance(sns.get("Message"), str):
            out.extend(_records(_loads(sns["Message"])))  # an SNS-triggered Lambda's record
        else:
            out.append(rec)
    return out


def _loads(body: str | bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InvalidParameterError(f"S3 event: invalid JSON ({exc})") from None


def parse_s3_event(body: str | bytes | dict[str, Any]) -> list[ObjectEvent]:
    """The created objects in an S3 event document (removals and other events are dropped).

    Raises:
        InvalidParameterError: not JSON, or not an S3 event (names the field at fault).
    """
    doc = _loads(body) if isinstance(body, str | bytes) else body
    events: list[ObjectEvent] = []
    for i, rec in enumerate(_records(doc)):
        if not isinstance(rec, dict):
            raise InvalidParameterError(f"S3 event: Records[{i}] is not an object")
        name = str(rec.get("eventName", "ObjectCreated:"))
        if not name.removeprefix("s3:").startswith("ObjectCreated:"):
            continue
        try:
            s3 = rec["s3"]
            bucket = str(s3["bucket"]["name"])
            obj = s3["object"]
            key = unquote_plus(str(obj["key"]))
        except (KeyError, TypeError) as exc:
            raise InvalidParameterError(f"S3 event: Records[{i}].s3 lacks {exc}") from None
        etag = obj.get("eTag") or obj.get("etag")
        size = obj.get("size")
        events.append(
            ObjectEvent(
                bucket,
                key,
                str(etag).strip('"') if etag else None,
                None if size is None else int(size),
            )
        )
    return events


class RedisListSource:
    """Reliable consumption of S3 event documents pushed onto a Redis list.

    Each document is moved atomically (``LMOVE``) to ``<list>:processing`` and removed from there
    only after its keys are dispatched, so a dispatcher killed in between does not lose it: the
    next one starts by moving leftovers back.
    """

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.processing = f"{name}:processing"
        while self.client.lmove(self.processing, self.name, "RIGHT", "LEFT") is not None:
            pass

    def pop(self, timeout_s: float = 1.0) -> bytes | None:
        raw: bytes | None = self.client.blmove(
            self.name, self.processing, timeout_s, "RIGHT", "LEFT"
        )
        return raw

    def done(self, raw: bytes) -> None:
        self.client.lrem(self.processing, 1, raw)

    def events(self, raw: bytes) -> list[ObjectEvent]:
        try:
            return parse_s3_event(raw)
        except InvalidParameterError as exc:
            log.warning("dropping an event document from %s: %s", self.name, exc.message)
            return []
