"""Helpers shared by the pipeline tests (servers, waiting, S3 clients)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from customlabels.pipeline.local_servers import wait_until

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "customlabels-test",
    "AWS_SECRET_ACCESS_KEY": "customlabels-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def wait_for(
    predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1
) -> Any:
    """:func:`wait_until`, failing the test (AssertionError) instead of raising TimeoutError."""
    try:
        return wait_until(predicate, timeout_s, what, every_s=interval_s)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_ENV["AWS_DEFAULT_REGION"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )
