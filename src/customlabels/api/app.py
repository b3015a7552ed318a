"""``create_app(settings)``: the FastAPI application of ``customlabels serve``.

- ``POST /``: the AWS JSON 1.1 endpoint boto3's ``rekognition`` client talks to
  (``X-Amz-Target: RekognitionService.<Operation>``), Signature V4 verified;
- ``/v1/...``: a plain REST API (multipart upload for detection); OpenAPI docs at ``/docs``;
- ``GET /health``: liveness, unauthenticated;
- ``/console``: the web console (:mod:`customlabels.console`), on the same context.

The app opens the service's :class:`~customlabels.service.Context` on startup (or uses one
given) and closes it on shutdown; with ``settings.pipeline_model`` it also runs the embedded
pipeline on the pipeline bucket for as long as it serves. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from customlabels import __version__
from customlabels.api.auth import authenticate
from customlabels.api.awsjson import TARGET_PREFIX, call_operation
from customlabels.api.errors import AWS_JSON, error_response, install_error_handlers
from customlabels.api.limits import RequestLimits
from customlabels.api.rest import router
from customlabels.console import install_console
from customlabels.errors import InvalidParameterError
from customlabels.service.context import Context, open_context
from customlabels.service.pipeline_runner import start_embedded_pipeline
from customlabels.service.settings import ServiceSettings
from customlabels.service.threads import in_thread

__all__ = ["create_app"]


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
        pipeline = None
        try:
            pipeline = app.state.pipeline = start_embedded_pipeline(settings)
            yield
        finally:
            if pipeline is not None:
                await run_in_threadpool(pipeline.stop)
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
    # every request's body is read within the size, time and nesting limits before a route runs
    app.add_middleware(RequestLimits, settings=settings)
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
            body = await request.body()  # already read, within limits, by RequestLimits
            authenticate(request, body, settings, basic=False)
            result = await in_thread(call_operation, request.app.state.ctx, operation, body)
        except Exception as exc:  # every error is rendered by the one mapping in api/errors.py
            return error_response(exc)
        return JSONResponse(result, media_type=AWS_JSON)

    return app
