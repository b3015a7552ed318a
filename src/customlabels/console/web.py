"""What every console page shares: templates, rendering, the service context, redirects with a
flash message, and running use cases off the event loop.

Routes stay thin: parse the form, call one use case through :func:`call`, then :func:`render` a
template or :func:`done` (redirect with a message). Service errors raised by a use case are
rendered once, by the handlers :mod:`customlabels.console.app` installs.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from customlabels import __version__
from customlabels.console.security import Session
from customlabels.service.context import Context
from customlabels.service.threads import in_thread

__all__ = [
    "PREFIX",
    "call",
    "ctx_of",
    "done",
    "label_colour",
    "render",
    "safe_next",
    "session_of",
    "templates",
]

PREFIX = "/console"

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


# Twelve colours that stay apart on photos (Tableau 10 + two); a label's colour is chosen by
# its name's hash, so it is the same on every page, thumbnail and in the labelling tool.
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#00d084",
    "#ffd400",
)


def label_colour(name: str) -> str:
    """A stable colour for a label name (the same on every page and thumbnail)."""
    return _PALETTE[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(_PALETTE)]


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


templates.env.filters["colour"] = label_colour
templates.env.filters["when"] = _when
templates.env.filters["q"] = lambda text: quote(str(text), safe="")
templates.env.filters["tojson_attr"] = lambda value: json.dumps(value)
templates.env.globals["app_version"] = __version__
templates.env.globals["P"] = PREFIX


def ctx_of(request: Request) -> Context:
    """The service context the API uses too (one catalog, one trainer, one pool)."""
    ctx: Context = request.app.state.ctx
    return ctx


def session_of(request: Request) -> Session:
    session: Session = request.state.console_session
    return session


# Runs a (blocking) use case in the thread pool; a failed one frees its frames at once.
call = in_thread


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with what every page needs (session, CSRF token, flash message)."""
    session = session_of(request)
    flash, session.flash = session.flash, None
    response = templates.TemplateResponse(
        request,
        template,
        {
            "user": session.user,
            "csrf": session.csrf,
            "flash": flash,
            "auth": request.app.state.settings.auth,
            **context,
        },
        status_code=status_code,
    )
    return response


def safe_next(target: str | None, default: str = PREFIX) -> str:
    """A redirect target inside the console only (no ``//host`` or scheme: no open redirect)."""
    if not target or not target.startswith(PREFIX) or target.startswith("//") or "\\" in target:
        return default
    return target


def done(request: Request, url: str, message: str | None = None, kind: str = "ok") -> Response:
    """Redirect (303, or ``HX-Redirect`` for htmx) after a change, with a flash message."""
    if message:
        session_of(request).flash = (kind, message)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
