from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from customlabels.pipeline.events import ObjectEvent
from customlabels.pipeline.seaweed_feed import parse_meta_event, split_json_stream


def _record(parent: str, name: str, is_dir: bool = False, data: bytes = b"") -> dict[str, Any]:
    """A ``weed filer.meta.tail`` record, trimmed to the fields SeaweedFS 4.x sends us."""
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode() if data else ""
    return {
        "directory": parent,
        "eventNotification": {
            "oldEntry": None,
            "newEntry": {
                "name": name,
                "isDirectory": is_dir,
                "attributes": {"fileSize": str(len(data)), "md5": md5},
            },
            "newParentPath": parent,
        },
        "tsNs": "1795797241217504213",
    }


def test_stream_of_pretty_printed_records_is_split() -> None:
    docs = [_record("/buckets/b/test_images", "a.jpg", data=b"x"), {"n": 2}]
    parts = [json.dumps(d, indent=2) + "\n" for d in docs]
    cut = len(parts[0]) + 5  # inside the second record
    text = "".join(parts)
    values, rest = split_json_stream(text[:cut])
    assert values == docs[:1] and rest.startswith("{")
    values, rest = split_json_stream(rest + text[cut:])
    assert values == docs[1:] and rest == ""


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            _record("/buckets/b/test_images/a b", "ü.jpg", data=b"hello"),
            ObjectEvent("b", "test_images/a b/ü.jpg", hashlib.md5(b"hello").hexdigest(), 5),
        ),
        (_record("/buckets/b/test_images", "sub", is_dir=True), None),
        (_record("/buckets/other/test_images", "a.jpg", data=b"x"), None),
        (
            {"directory": "/buckets/b", "eventNotification": {"oldEntry": {}, "newEntry": None}},
            None,
        ),
    ],
    ids=["file", "folder", "other-bucket", "deletion"],
)
def test_meta_records_become_object_events(record: dict[str, Any], expected: object) -> None:
    assert parse_meta_event(record, "b") == expected
