"""Verifying AWS Signature Version 4 on received requests, with botocore's own signer.

The client's ``Authorization`` header names the key, the credential scope (date, region,
service), the signed headers and the signature. We rebuild the same request (method, URL, exactly
the signed headers, body) as a botocore ``AWSRequest`` and let :class:`botocore.auth.SigV4Auth`
compute the canonical request, string to sign and signature, then compare in constant time. No
SigV4 crypto is written here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from customlabels.errors import AccessDeniedError

__all__ = ["MAX_CLOCK_SKEW_S", "verify_sigv4"]

MAX_CLOCK_SKEW_S = 15 * 60
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/"
    r"(?P<service>[^/\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9\-;]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


class _Verifier(SigV4Auth):
    """SigV4Auth that signs exactly the headers the client signed."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: list[str]):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        header_map = HTTPHeaders()
        for name in self._signed:
            value = request.headers.get(name)
            if value is None:
                raise AccessDeniedError(f"signed header {name!r} is missing from the request")
            header_map[name] = value
        return header_map


def verify_sigv4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    secret_access_key: str,
    now: dt.datetime | None = None,
) -> str:
    """Check a request's Signature V4; return the region it was signed for.

    Args:
        url: the full URL as the client addressed it (scheme, ``Host`` header, path, query).
        headers: the received headers (any case).

    Raises:
        AccessDeniedError: unsigned, unknown key, expired/future timestamp, or a signature that
            does not match.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization", "")
    if not auth:
        raise AccessDeniedError(
            "request is not signed (no Authorization header); sign it with AWS Signature Version 4"
        )
    match = _AUTH_RE.match(auth.strip())
    if not match:
        raise AccessDeniedError(
            "Authorization header: expected AWS4-HMAC-SHA256 Credential=..., "
            "SignedHeaders=..., Signature=..."
        )
    if not hmac.compare_digest(match["key"], access_key_id):
        raise AccessDeniedError(f"unknown access key {match['key']!r}")
    stamp = lower.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise AccessDeniedError(f"X-Amz-Date: expected YYYYMMDDTHHMMSSZ, got {stamp!r}") from None
    current = now or dt.datetime.now(dt.UTC)
    if abs((current - when).total_seconds()) > MAX_CLOCK_SKEW_S:
        raise AccessDeniedError(
            f"X-Amz-Date {stamp} is more than {MAX_CLOCK_SKEW_S // 60} minutes from the server's "
            "clock"
        )
    if stamp[:8] != match["date"]:
        raise AccessDeniedError("credential scope date does not match X-Amz-Date")
    signed = match["signed"].split(";")
    if "host" not in signed:
        raise AccessDeniedError("SignedHeaders must include host")
    claimed = lower.get("x-amz-content-sha256")
    if claimed is not None and not hmac.compare_digest(claimed, hashlib.sha256(body).hexdigest()):
        # botocore trusts this header as the body's hash: check it, or the body could be swapped
        raise AccessDeniedError("X-Amz-Content-SHA256 does not match the request body")
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    request.context["timestamp"] = stamp
    verifier = _Verifier(
        Credentials(access_key_id, secret_access_key), match["service"], match["region"], signed
    )
    canonical = verifier.canonical_request(request)
    expected = verifier.signature(verifier.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise AccessDeniedError(
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method."
        )
    return match["region"]
