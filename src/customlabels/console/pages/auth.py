"""Sign in (the server's access key id + secret) and sign out."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from customlabels.console.app import ConsoleState, guard
from customlabels.console.security import Session, check_keys, csrf_ok
from customlabels.console.web import PREFIX, done, render, safe_next, session_of

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str = PREFIX) -> Response:
    if session_of(request).user:
        return done(request, safe_next(next))
    return render(request, "sign_in.html", next=safe_next(next))


@router.post("/sign-in")
async def sign_in(
    request: Request,
    access_key_id: Annotated[str, Form(max_length=256)] = "",
    secret_access_key: Annotated[str, Form(max_length=512)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = PREFIX,
) -> Response:
    """Check the key pair after the client's throttle delay; a success starts a new session."""
    state: ConsoleState = request.app.state.console
    session = session_of(request)
    if not csrf_ok(session, csrf):
        return render(
            request,
            "sign_in.html",
            403,
            next=safe_next(next),
            error="The form expired: sign in again.",
        )
    client = request.client.host if request.client else "unknown"
    await asyncio.sleep(state.throttle.delay_s(client))
    settings = request.app.state.settings
    if not check_keys(
        access_key_id, secret_access_key, settings.access_key_id, settings.secret_access_key
    ):
        state.throttle.failed(client)
        return render(
            request,
            "sign_in.html",
            401,
            next=safe_next(next),
            error="Wrong access key id or secret access key.",
        )
    state.throttle.succeeded(client)
    fresh = Session(user=access_key_id)  # a new CSRF token with the new session
    request.state.console_session = fresh
    return done(request, safe_next(next), f"Signed in as {access_key_id}.")


@router.post("/sign-out", dependencies=[Depends(guard)])
async def sign_out(request: Request) -> Response:
    request.state.console_session = Session(flash=("ok", "Signed out."))
    return done(request, f"{PREFIX}/sign-in")
