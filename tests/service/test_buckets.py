"""The service's S3Object reads: an unreachable store is an outage (500), not a missing object."""

from __future__ import annotations

import pytest

from customlabels.errors import StoreUnavailableError
from customlabels.pipeline.local_servers import free_port
from customlabels.service.buckets import Buckets


def test_an_unreachable_endpoint_is_an_outage_not_a_missing_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    buckets = Buckets(s3_endpoint_url=f"http://127.0.0.1:{free_port()}")  # refused
    with pytest.raises(StoreUnavailableError) as caught:
        buckets.get("photos", "test_images/a.jpg")
    assert caught.value.http_status == 500 and caught.value.aws_type == "InternalServerError"
