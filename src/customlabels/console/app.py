"""``install_console(app)``: mount the web console at ``/console`` on the service's FastAPI app.

The console shares the app's service context (catalog, buckets, trainer, serving pool): it is a
client of the same use cases as the AWS JSON and REST APIs, with no second process.

What is installed:
- the pages (:mod:`customlabels.console.pages`), behind :func:`guard` (signed in; CSRF token on
  every state-changing request);
- ``/console/static`` (CSS, the console's JavaScript and the vendored libraries);
- ``GET /`` → ``/console`` for browsers;
- a middleware that reads and re-signs the session cookie and sets the security headers
  (a strict Content-Security-Policy: scripts, styles and images from the server only, no inline
  script), and error handlers that show service errors on the page instead of as JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from customlabels.console.images import ThumbnailCache
from customlabels.console.security import COOKIE, SessionCodec, SignInThrottle, csrf_ok
from customlabels.console.web import PREFIX, render, session_of
from customlabels.errors import CustomLabelsError

__all__ = ["CSP", "ConsoleState", "guard", "install_console"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_OPEN = (f"{PREFIX}/sign-in", f"{PREFIX}/static/")


@dataclass
class ConsoleState:
    """The console's own state on ``app.state.console``."""

    codec: SessionCodec
    throttle: SignInThrottle
    thumbs: ThumbnailCache


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def guard(request: Request) -> None:
    """Router dependency: signed in (unless --no-auth) and, on POST, a valid CSRF token.

    Raises:
        StarletteHTTPException: 303 to the sign-in page; 403 on a missing or wrong CSRF token.
    """
    session = session_of(request)
    if request.method in _UNSAFE:
        sent = request.headers.get("x-csrf-token")
        if sent is None and "form" in request.headers.get("content-type", ""):
            sent = (await request.form()).get("csrf")  # type: ignore[assignment]
        if not csrf_ok(session, sent):
            raise StarletteHTTPException(
                403, "CSRF token missing or wrong: reload the page and try again"
            )
    if request.app.state.settings.auth and not session.user:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = PREFIX
        raise StarletteHTTPException(
            303, "sign in first", headers={"Location": f"{PREFIX}/sign-in?next={quote(target)}"}
        )


def install_console(app: FastAPI) -> None:
    """Add the console's pages, static files, middleware and error rendering to ``app``.

    ``app.state.settings`` must be set (the API's ``create_app`` does it first).
    """
    from customlabels.console.pages import routers

    settings = app.state.settings
    app.state.console = ConsoleState(
        codec=SessionCodec(settings.secret_access_key if settings.auth else None),
        throttle=SignInThrottle(),
        thumbs=ThumbnailCache(),
    )
    for router in routers():
        app.include_router(router)
    static = Path(__file__).parent / "static"
    app.mount(f"{PREFIX}/static", StaticFiles(directory=static), name="console-static")

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse(PREFIX, status_code=307)

    @app.middleware("http")
    async def console_session(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            return await call_next(request)
        state: ConsoleState = request.app.state.console
        session, _ = state.codec.loads(request.cookies.get(COOKIE))
        if not settings.auth:
            session.user = "local"
        request.state.console_session = session
        response = await call_next(request)
        response.headers.update(_HEADERS)
        if not path.startswith(f"{PREFIX}/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
            response.set_cookie(
                COOKIE,
                state.codec.dumps(request.state.console_session),  # sign-in/out replace it
                max_age=int(state.codec.max_age_s),
                path=PREFIX,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    _wrap_error_handlers(app)


def _wrap_error_handlers(app: FastAPI) -> None:
    """Console paths show errors as pages (or htmx fragments); the APIs keep their JSON."""
    for kind in (CustomLabelsError, RequestValidationError, StarletteHTTPException):
        api_handler = app.exception_handlers.get(kind)

        async def handler(request: Request, exc: Exception, _api: Any = api_handler) -> Response:
            path = request.url.path
            if not path.startswith(PREFIX) or not hasattr(request.state, "console_session"):
                if _api is None:
                    raise exc
                response: Response = await _api(request, exc)
                return response
            return _console_error(request, exc)

        app.add_exception_handler(kind, handler)


def _console_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 303:
        location = (exc.headers or {}).get("Location", PREFIX)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": location})
        return RedirectResponse(location, status_code=303)
    if isinstance(exc, CustomLabelsError):
        status, code, message = exc.http_status, exc.aws_type, exc.message
    elif isinstance(exc, StarletteHTTPException):
        status, code, message = exc.status_code, f"HTTP {exc.status_code}", str(exc.detail)
    else:
        status, code, message = 400, "InvalidParameterException", _validation_text(exc)
    if status == 404 and code.startswith("HTTP"):
        message = "no such page"
    template = "_error.html" if request.headers.get("hx-request") else "error.html"
    return render(request, template, status_code=status, code=code, message=message)


def _validation_text(exc: Exception) -> str:
    if isinstance(exc, RequestValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
            for e in exc.errors()
        )
    return str(exc)
