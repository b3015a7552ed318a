from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from customlabels.errors import InvalidParameterError
from customlabels.pipeline.events import ObjectEvent, parse_s3_event


def _record(key: str, name: str = "ObjectCreated:Put", etag: str | None = "abc") -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "size": 10}
    if etag:
        obj["eTag"] = etag
    return {"eventName": name, "s3": {"bucket": {"name": "photos"}, "object": obj}}


@pytest.mark.parametrize(
    "raw_key",
    [
        "test_images/a b/ü c.jpg",
        "test_images/100%25 sure.jpg",  # a literal %25 in the real key
        "test_images/x+y=z&q.jpg",
        "test_images/日本/猫.png",
    ],
)
@pytest.mark.parametrize("encode", [quote_plus, quote], ids=["plus", "percent"])
def test_keys_are_url_decoded(raw_key: str, encode: Any) -> None:
    doc = {"Records": [_record(encode(raw_key, safe="/"))]}
    assert parse_s3_event(json.dumps(doc)) == [ObjectEvent("photos", raw_key, "abc", 10)]


def test_removals_and_test_events_are_dropped() -> None:
    doc = {
        "Records": [
            _record("a.jpg", "ObjectRemoved:Delete"),
            _record("b.jpg", "s3:ObjectCreated:Copy"),
        ]
    }
    assert [e.key for e in parse_s3_event(doc)] == ["b.jpg"]
    assert parse_s3_event({"Event": "s3:TestEvent", "Bucket": "photos"}) == []


def test_sns_envelope_and_minio_access_format() -> None:
    inner = {"Records": [_record("a%20b.jpg", etag='"q"')]}
    assert parse_s3_event({"Type": "Notification", "Message": json.dumps(inner)}) == [
        ObjectEvent("photos", "a b.jpg", "q", 10)
    ]
    minio = [{"Event": [_record("c.jpg")], "EventTime": "2026-11-27T00:00:00Z"}]
    assert [e.key for e in parse_s3_event(minio)] == ["c.jpg"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"foo": 1}', "expected a 'Records' list"),
        ('{"Records": {}}', "'Records' must be a list"),
        ('{"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}', r"Records\[0\]\.s3 lacks"),
        ("42", "expected a JSON object"),
    ],
)
def test_bad_documents_name_the_problem(body: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        parse_s3_event(body)
