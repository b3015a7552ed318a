"""Errors become responses in ONE place: ``{"__type": <Rekognition exception>, "message": ...}``.

Every :class:`~customlabels.errors.CustomLabelsError` carries its exception name and HTTP status
(see ``errors.py``); request validation failures become InvalidParameterException and anything
unexpected InternalServerError (500, details only in the server's log).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from customlabels.errors import CustomLabelsError, InternalServerError, InvalidParameterError

__all__ = ["AWS_JSON", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

AWS_JSON = "application/x-amz-json-1.1"


def to_service_error(exc: BaseException) -> CustomLabelsError:
    """The service error an exception is answered with."""
    if isinstance(exc, CustomLabelsError):
        return exc
    if isinstance(exc, RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return InvalidParameterError(problems or "invalid request")
    log.error("internal error", exc_info=(type(exc), exc, exc.__traceback__))
    return InternalServerError("internal server error (see the server's log)")


def error_response(
    exc: BaseException, media_type: str = AWS_JSON, headers: dict[str, str] | None = None
) -> Response:
    """The HTTP response for ``exc`` (status from the error class, AWS JSON error body)."""
    err = to_service_error(exc)
    return JSONResponse(
        err.to_dict(),
        status_code=err.http_status,
        media_type=media_type,
        headers={"x-amzn-ErrorType": err.aws_type, **(headers or {})},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error raised by a REST handler through :func:`error_response`."""

    async def service_error(_: Request, exc: Exception) -> Response:
        return error_response(exc, "application/json")

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        name = (
            "ResourceNotFoundException" if exc.status_code == 404 else "InvalidParameterException"
        )
        return JSONResponse(
            {"__type": name, "message": str(exc.detail)}, status_code=exc.status_code
        )

    app.add_exception_handler(CustomLabelsError, service_error)
    app.add_exception_handler(RequestValidationError, service_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, service_error)
