"""Who may call the service: requests signed with AWS Signature V4 by the configured key.

The REST API (``/v1``) also accepts HTTP Basic with the same pair (access key id as the user,
secret key as the password) for clients without a SigV4 signer; use it over loopback or TLS only.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.requests import Request

from customlabels.api.sigv4 import verify_sigv4
from customlabels.errors import AccessDeniedError
from customlabels.service.settings import ServiceSettings

__all__ = ["authenticate", "request_url"]


def request_url(request: Request) -> str:
    """The URL as the client addressed it (its ``Host`` header, path and raw query)."""
    host = request.headers.get("host", "")
    query = request.scope.get("query_string", b"").decode()
    path = request.scope.get("raw_path", request.url.path.encode()).decode()
    path = path.split("?", 1)[0]
    return f"{request.url.scheme}://{host}{path}" + (f"?{query}" if query else "")


def authenticate(request: Request, body: bytes, settings: ServiceSettings, basic: bool) -> None:
    """Raise AccessDeniedError unless the request is signed (or, if ``basic``, Basic-authed)
    with the configured key; no-op when auth is off."""
    if not settings.auth:
        return
    key, secret = settings.access_key_id, settings.secret_access_key
    if not key or not secret:
        raise AccessDeniedError("the server has no access key configured")
    header = request.headers.get("authorization", "")
    if basic and header.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AccessDeniedError("Authorization: malformed Basic credentials") from None
        if hmac.compare_digest(user, key) and hmac.compare_digest(password, secret):
            return
        raise AccessDeniedError("Authorization: wrong access key or secret")
    verify_sigv4(request.method, request_url(request), request.headers, body, key, secret)
