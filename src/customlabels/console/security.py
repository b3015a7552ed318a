"""Who may use the console: signed, expiring session cookies, CSRF tokens, slowed sign-ins.

- The session is a cookie signed with :mod:`itsdangerous` (a key derived from the server's
  secret access key, so changing the secret signs everyone out); it carries the signed-in key
  id, a CSRF token and one flash message, and expires after ``max_age_s``. It is HttpOnly and
  SameSite=Strict, scoped to ``/console``.
- Every visitor gets a session (signed in or not), so even the sign-in form carries a CSRF token.
- Failed sign-ins from one client address are slowed down: each failure doubles the wait before
  the next answer (0.5 s, 1 s, 2 s ... up to 8 s) until a success or ten quiet minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

__all__ = ["COOKIE", "Session", "SessionCodec", "SignInThrottle", "check_keys", "csrf_ok"]

COOKIE = "cl_session"
_SALT = "customlabels-console-session"


@dataclass
class Session:
    """What the session cookie holds.

    Attributes:
        user: the access key id signed in with ("" when not signed in; "local" with --no-auth).
        csrf: the token every state-changing request must echo.
        flash: one ``(kind, message)`` shown on the next page, then dropped.
    """

    user: str = ""
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    flash: tuple[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"u": self.user, "c": self.csrf, "f": list(self.flash) if self.flash else None}

    @classmethod
    def from_dict(cls, data: Any) -> Session:
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return cls()
        flash = data.get("f")
        pair = (
            (str(flash[0]), str(flash[1])) if isinstance(flash, list) and len(flash) == 2 else None
        )
        return cls(str(data.get("u") or ""), data["c"], pair)


def _serializer(secret: bytes, clock: Callable[[], float]) -> URLSafeTimedSerializer:
    """itsdangerous' timed serializer whose signer reads ``clock`` (tests move time forward)."""

    class _Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return URLSafeTimedSerializer(secret, salt=_SALT, signer=_Signer)


class SessionCodec:
    """Sign and verify session cookies.

    Args:
        secret: the server's secret access key (None with --no-auth: a random per-process key).
        max_age_s: how long a session lasts after it was last written.
        clock: seconds since the epoch (``time.time`` unless a test moves it).
    """

    def __init__(
        self,
        secret: str | None,
        max_age_s: float = 8 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = (
            hmac.new(secret.encode(), _SALT.encode(), hashlib.sha256).digest()
            if secret
            else secrets.token_bytes(32)
        )
        self.max_age_s = max_age_s
        self._serializer = _serializer(key, clock)

    def dumps(self, session: Session) -> str:
        return str(self._serializer.dumps(session.to_dict()))

    def loads(self, cookie: str | None) -> tuple[Session, bool]:
        """The session in ``cookie`` and whether it was valid (a new one when absent, forged
        or expired)."""
        if not cookie:
            return Session(), False
        try:
            data = self._serializer.loads(cookie, max_age=int(self.max_age_s))
        except (SignatureExpired, BadSignature):
            return Session(), False
        return Session.from_dict(data), True


def csrf_ok(session: Session, sent: str | None) -> bool:
    """Whether a request's token (form field ``csrf`` or header ``X-CSRF-Token``) matches."""
    return bool(sent) and hmac.compare_digest(session.csrf, str(sent))


def check_keys(key_id: str, secret: str, want_key: str | None, want_secret: str | None) -> bool:
    """Constant-time comparison of a sign-in with the server's key pair."""
    if not want_key or not want_secret:
        return False
    return hmac.compare_digest(key_id.encode(), want_key.encode()) & hmac.compare_digest(
        secret.encode(), want_secret.encode()
    )


class SignInThrottle:
    """Per-client delay before answering a sign-in, doubling with each recent failure.

    Args:
        base_s: the wait after the first failure.
        max_s: the longest wait.
        forget_s: failures older than this are forgotten.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        base_s: float = 0.5,
        max_s: float = 8.0,
        forget_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_s, self.max_s, self.forget_s = base_s, max_s, forget_s
        self._clock = clock
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def delay_s(self, client: str) -> float:
        """Seconds to wait before checking this client's next sign-in."""
        with self._lock:
            count, last = self._failures.get(client, (0, 0.0))
            if count and self._clock() - last > self.forget_s:
                self._failures.pop(client, None)
                count = 0
        return 0.0 if count == 0 else min(self.max_s, self.base_s * 2 ** (count - 1))

    def failed(self, client: str) -> None:
        with self._lock:
            count, _ = self._failures.get(client, (0, 0.0))
            self._failures[client] = (count + 1, self._clock())
            if len(self._failures) > 10_000:  # bounded memory under a spray of addresses
                oldest = min(self._failures, key=lambda k: self._failures[k][1])
                self._failures.pop(oldest)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
