"""What a request may cost the server, enforced in one place before any route runs.

- **Body size**: a declared ``Content-Length`` over :func:`max_body_bytes` is refused before a
  byte of the body is read; a chunked body is refused as soon as it passes the limit.
- **Slow clients**: the body must arrive within ``settings.request_timeout_s``, and the request
  head too (:func:`timed_h11_protocol`, for uvicorn); a client that trickles bytes is answered
  (RequestTimeoutException, 408) or disconnected. Waiting on a client never holds a thread:
  bodies are read on the event loop, and use cases run in the thread pool only once the whole
  request is in.
- **Nesting bombs**: a JSON body nested deeper than :data:`MAX_JSON_DEPTH` is refused before it
  is parsed (Rekognition's deepest request shape is 4 levels).
- **Header bombs**: headers over :data:`MAX_HEAD_BYTES` in all are refused. h11 already drops
  a connection whose unfinished head passes that size; a head that arrives whole in one read
  (up to 64 KiB) is measured here.

Refusals are rendered by :func:`customlabels.api.errors.error_response`, in the service's
shape. :func:`uvicorn_config` holds the server settings that go with these limits.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import numpy as np
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from customlabels.api.errors import AWS_JSON, error_response
from customlabels.errors import (
    CustomLabelsError,
    ImageTooLargeError,
    InvalidParameterError,
    RequestTimeoutError,
)
from customlabels.service.settings import ServiceSettings

__all__ = [
    "MAX_HEAD_BYTES",
    "MAX_JSON_DEPTH",
    "RequestLimits",
    "json_depth",
    "max_body_bytes",
    "timed_h11_protocol",
    "uvicorn_config",
]

MAX_JSON_DEPTH = 32
MAX_HEAD_BYTES = 16 * 1024  # request line + headers (h11's incomplete-event limit)
# The smallest body limit: UpdateDatasetEntries' GroundTruth blob (≤ 5 MiB in botocore's model)
# in base64, with room for the other fields.
_MIN_BODY_LIMIT = 8 * 1024 * 1024
_FIELDS_OVERHEAD = 64 * 1024  # JSON fields or multipart boundaries around an image
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def max_body_bytes(settings: ServiceSettings) -> int:
    """The largest request body: an image of ``request_limits.max_bytes`` in base64 (the AWS
    JSON encoding of ``Image.Bytes``) plus the other fields, and never under 8 MiB."""
    image = 4 * math.ceil(settings.request_limits.max_bytes / 3)
    return max(_MIN_BODY_LIMIT, image + _FIELDS_OVERHEAD)


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (0 for a scalar), without parsing it.

    Strings are blanked out first (a bracket inside one does not count), so this is linear in
    the body's size and cannot recurse; malformed JSON gets a number too (the parser then
    refuses it).
    """
    brackets = np.frombuffer(_STRING.sub(b"", body).translate(None, _NOT_BRACKETS), np.uint8)
    if brackets.size == 0:
        return 0
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


class _ClientGone(Exception):
    """The client disconnected before its body was in: nothing to answer."""


def _is_detection(scope: Scope) -> bool:
    headers = dict(scope.get("headers") or [])
    target = headers.get(b"x-amz-target", b"")
    return target.endswith(b".DetectCustomLabels") or str(scope.get("path", "")).endswith("/detect")


def _too_large(scope: Scope, message: str) -> CustomLabelsError:
    # the service answers an oversized detection with ImageTooLargeException
    return ImageTooLargeError(message) if _is_detection(scope) else InvalidParameterError(message)


class RequestLimits:
    """ASGI middleware: read each HTTP request's body within the size and time limits, check
    its JSON nesting, then hand the app the body in one message.

    Args:
        app: the application.
        settings: ``request_limits`` (the body limit, see :func:`max_body_bytes`) and
            ``request_timeout_s`` are read from here.
    """

    def __init__(self, app: ASGIApp, settings: ServiceSettings) -> None:
        self.app = app
        self.max_bytes = max_body_bytes(settings)
        self.timeout_s = settings.request_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except _ClientGone:
            return
        except CustomLabelsError as exc:
            # the rest of the body is never read: the connection closes after the answer
            media = "application/json" if str(scope.get("path", "")).startswith("/v1") else AWS_JSON
            response = error_response(exc, media, headers={"connection": "close"})
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # http.disconnect, when the client goes

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        headers = scope.get("headers") or []
        head = sum(len(name) + len(value) + 4 for name, value in headers)  # "name: value\r\n"
        if head > MAX_HEAD_BYTES:
            raise InvalidParameterError(
                f"request headers: {head} bytes in {len(headers)} headers, over the limit of "
                f"{MAX_HEAD_BYTES}"
            )
        declared = dict(headers).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                text = declared.decode(errors="replace")
                raise InvalidParameterError(
                    f"Content-Length: expected an integer, got {text!r}"
                ) from None
            if size > self.max_bytes:
                raise _too_large(
                    scope, f"request body of {size} bytes is over the limit of {self.max_bytes}"
                )
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        raise _ClientGone
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _too_large(
                            scope, f"request body over the limit of {self.max_bytes} bytes"
                        )
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise RequestTimeoutError(
                f"request body not received within {self.timeout_s:g} s ({size} bytes came)"
            ) from None
        body = b"".join(chunks)
        if body.lstrip()[:1] in (b"{", b"[") and json_depth(body) > MAX_JSON_DEPTH:
            raise InvalidParameterError(
                f"request body: JSON nested deeper than {MAX_JSON_DEPTH} levels"
            )
        return body


def timed_h11_protocol(head_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline of ``head_timeout_s`` for each request head.

    uvicorn's keep-alive timer is cancelled by any byte received, so a client sending its
    headers one byte at a time would hold its connection for ever; this protocol closes the
    connection unless a whole request head arrives within ``head_timeout_s`` of the connection
    (or of the previous response).
    """

    class TimedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _await_head(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(head_timeout_s, self.timeout_keep_alive_handler)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a request head arrived
                self._cancel_head_timer()

        def on_response_complete(self) -> None:
            if not self.transport.is_closing():
                self._await_head()  # before super(): it may start a pipelined request
            super().on_response_complete()

    return TimedH11Protocol


def uvicorn_config(
    app: ASGIApp, settings: ServiceSettings, host: str, port: int, **kw: Any
) -> uvicorn.Config:
    """The ``uvicorn.Config`` of every server this package starts (foreground or in a thread):
    the h11 protocol with a request-head deadline and a bounded head size."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=timed_h11_protocol(settings.request_timeout_s),
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=5,
        lifespan="on",
        **kw,
    )
