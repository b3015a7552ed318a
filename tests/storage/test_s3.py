"""S3Store sorts every failure once: missing object, outage (transient), refusal."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from customlabels.errors import (
    IMAGE_FAULTS,
    InvalidParameterError,
    InvalidS3ObjectError,
    StoreAccessError,
    StoreUnavailableError,
)
from customlabels.storage import S3Store
from customlabels.storage.s3 import classify_s3_error, sse_params


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_client_error("NoSuchKey", 404), InvalidS3ObjectError),
        (_client_error("404", 404), InvalidS3ObjectError),
        (_client_error("NoSuchBucket", 404), InvalidS3ObjectError),
        (_client_error("SlowDown", 503), StoreUnavailableError),
        (_client_error("InternalError", 500), StoreUnavailableError),
        (_client_error("ServiceUnavailable", 503), StoreUnavailableError),
        (_client_error("TooManyRequests", 429), StoreUnavailableError),
        (_client_error("RequestTimeout", 400), StoreUnavailableError),
        (_client_error("AccessDenied", 403), StoreAccessError),
        (_client_error("InvalidAccessKeyId", 403), StoreAccessError),
        (_client_error("KMS.DisabledException", 400), StoreAccessError),
        (EndpointConnectionError(endpoint_url="http://x"), StoreUnavailableError),
        (ReadTimeoutError(endpoint_url="http://x"), StoreUnavailableError),
        (ConnectionResetError("reset by peer"), StoreUnavailableError),
    ],
)
def test_failures_are_sorted(exc: Exception, expected: type[Exception]) -> None:
    error = classify_s3_error(exc, "s3://b/k")
    assert type(error) is expected and "s3://b/k" in error.message
    # the one rule of what becomes <key>.error.json
    assert isinstance(error, IMAGE_FAULTS) == (expected is InvalidS3ObjectError)


def test_a_store_that_does_not_answer_is_an_outage_for_every_operation(
    refused_s3_client: Any,
) -> None:
    store = S3Store("bucket", client=refused_s3_client)
    for call in (
        lambda: store.get("k.jpg"),
        lambda: store.head("k.jpg"),
        lambda: store.put("k.json", b"{}"),
        lambda: list(store.list("p/")),
        lambda: store.delete("k.json"),
    ):
        with pytest.raises(StoreUnavailableError, match="unreachable"):
            call()


@pytest.mark.parametrize(
    ("sse", "key", "expected"),
    [
        (None, None, {}),
        ("AES256", None, {"ServerSideEncryption": "AES256"}),
        ("aws:kms", "k1", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k1"}),
    ],
)
def test_sse_params(sse: str | None, key: str | None, expected: dict[str, str]) -> None:
    assert sse_params(sse, key) == expected


@pytest.mark.parametrize(("sse", "key"), [("AES256", "k1"), (None, "k1"), ("rot13", None)])
def test_sse_params_refuse_what_cannot_work(sse: str | None, key: str | None) -> None:
    with pytest.raises(InvalidParameterError):
        sse_params(sse, key)
