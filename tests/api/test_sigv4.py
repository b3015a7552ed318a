"""Signature V4 verification against requests signed by botocore itself."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from customlabels.api.sigv4 import verify_sigv4
from customlabels.errors import AccessDeniedError

KEY, SECRET = "AKIDLOCALTEST", "local-secret-key"
URL = "http://127.0.0.1:8080/"
BODY = b'{"ProjectName": "p"}'


def _signed(secret: str = SECRET, key: str = KEY, body: bytes = BODY) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=URL,
        data=body,
        headers={
            "X-Amz-Target": "RekognitionService.CreateProject",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials(key, secret), "rekognition", "us-east-1").add_auth(request)
    return request


def _verify(request: AWSRequest, body: bytes = BODY, **kwargs: object) -> str:
    headers = {k: v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    return verify_sigv4("POST", URL, headers, body, KEY, SECRET, **kwargs)  # type: ignore[arg-type]


def test_a_request_signed_by_botocore_verifies() -> None:
    assert _verify(_signed()) == "us-east-1"


@pytest.mark.parametrize(
    ("request_kwargs", "body", "message"),
    [
        ({"secret": "wrong-secret"}, BODY, "signature we calculated does not match"),
        ({"key": "AKIDOTHER"}, BODY, "unknown access key"),
        ({}, b'{"ProjectName": "q"}', "does not match"),  # body changed after signing
    ],
)
def test_wrong_credentials_or_tampering_is_denied(
    request_kwargs: dict[str, str], body: bytes, message: str
) -> None:
    with pytest.raises(AccessDeniedError, match=message):
        _verify(_signed(**request_kwargs), body=body)


def test_unsigned_and_stale_requests_are_denied() -> None:
    with pytest.raises(AccessDeniedError, match="not signed"):
        verify_sigv4("POST", URL, {"host": "127.0.0.1:8080"}, BODY, KEY, SECRET)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with pytest.raises(AccessDeniedError, match="minutes from the server's clock"):
        _verify(_signed(), now=later)


def test_a_changed_signed_header_is_denied() -> None:
    request = _signed()
    request.headers.replace_header("X-Amz-Target", "RekognitionService.DeleteProject")
    with pytest.raises(AccessDeniedError, match="does not match"):
        _verify(request)
