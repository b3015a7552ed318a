"""``create_app(settings)``: the FastAPI application of ``customlabels serve``.

- ``POST /``: the AWS JSON 1.1 endpoint boto3's ``rekognition`` client talks to
  (``X-Amz-Target: RekognitionService.<Operation>``), Signature V4 verified;
- ``/v1/...``: a plain REST API (multipart upload for detection); OpenAPI docs at ``/docs``;
- ``GET /health``: liveness, unauthenticated;
- ``/console``: the web console (:mod:`customlabels.console`), on the same context.

The app opens the service's :class:`~customlabels.service.Context` on startup (or uses one
given) and closes it on shutdown. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from customlabels import __version__
from customlabels.api.auth import authenticate, check_body_size
from customlabels.api.awsjson import TARGET_PREFIX, call_operation
from customlabels.api.errors import AWS_JSON, error_response, install_error_handlers
from customlabels.api.rest import router
from customlabels.console import install_console
from customlabels.errors import ImageTooLargeError, InvalidParameterError
from customlabels.service.context import Context, open_context
from customlabels.service.settings import ServiceSettings

__all__ = ["create_app"]

# base64 of the API's 5,242,880-byte image field is ≈ 7 MB; leave room for the other fields
MAX_AWS_BODY = 8 * 1024 * 1024


def create_app(settings: ServiceSettings, context: Context | None = None) -> FastAPI:
    """Build the application.

    Args:
        settings: the service's settings (credentials filled in by the caller).
        context: an already open service context (tests, benchmarks); opened from ``settings``
            on startup when omitted, and closed on shutdown in that case only.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = context is None
        app.state.ctx = context or open_context(settings)
        try:
            yield
        finally:
            if owned:
                app.state.ctx.close()

    app = FastAPI(
        title="customlabels",
        version=__version__,
        description=(
            "Self-hosted Rekognition Custom Labels. boto3's `rekognition` client works against "
            "`POST /` (AWS JSON 1.1); the `/v1` routes are a plain REST API."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    if context is not None:
        app.state.ctx = context
    install_error_handlers(app)
    app.include_router(router)
    install_console(app)  # the web console at /console (GET / redirects there)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.post("/", include_in_schema=False)
    async def aws_json(request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        operation = target.removeprefix(TARGET_PREFIX)
        try:
            if not target.startswith(TARGET_PREFIX):
                raise InvalidParameterError(
                    f"X-Amz-Target: expected {TARGET_PREFIX}<Operation>, got {target!r}"
                )
            body = await _read_body(request, operation)
            authenticate(request, body, settings, basic=False)
            result = await run_in_threadpool(call_operation, request.app.state.ctx, operation, body)
        except Exception as exc:  # every error is rendered by the one mapping in api/errors.py
            return error_response(exc)
        return JSONResponse(result, media_type=AWS_JSON)

    return app


async def _read_body(request: Request, operation: str) -> bytes:
    """The body, refused (before reading it all) when over :data:`MAX_AWS_BODY`."""
    too_large = ImageTooLargeError if operation == "DetectCustomLabels" else InvalidParameterError
    try:
        check_body_size(request, MAX_AWS_BODY)
    except ImageTooLargeError as exc:
        raise too_large(exc.message) from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_AWS_BODY:
            raise too_large(f"request body over the limit of {MAX_AWS_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
