"""Running the app with uvicorn: in the foreground (``customlabels serve``) or in a thread
(tests and benchmarks: :func:`serve_in_thread`)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from customlabels.errors import ConfigError
from customlabels.service.settings import ServiceSettings

__all__ = ["check_binding", "is_loopback", "run", "serve_in_thread"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(settings: ServiceSettings) -> None:
    """Refuse to serve without authentication anywhere but loopback, or without a key.

    Raises:
        ConfigError: ``--no-auth`` on a non-loopback address, or auth on and no key configured.
    """
    if not settings.auth and not is_loopback(settings.host):
        raise ConfigError(
            f"--no-auth: only allowed when bound to loopback (127.0.0.1, ::1), got --host "
            f"{settings.host}"
        )
    if settings.auth and not (settings.access_key_id and settings.secret_access_key):
        raise ConfigError(
            "no access key configured: set CUSTOMLABELS_ACCESS_KEY_ID and "
            "CUSTOMLABELS_SECRET_ACCESS_KEY (or write <home>/credentials), or use --no-auth on "
            "loopback"
        )


def run(settings: ServiceSettings, log_level: str = "info") -> None:
    """Serve in the foreground until interrupted.

    The service context is opened before the server listens, so a home already served by
    another process (ResourceInUseError) or a bad catalog URL is one error line, not a failed
    startup. glibc's malloc is tuned first, before any model loads or request thread starts
    (:func:`customlabels.inference.allocator.tune_allocator`: memory flat under load).
    """
    import uvicorn

    from customlabels.api.app import create_app
    from customlabels.api.limits import uvicorn_config
    from customlabels.inference.allocator import tune_allocator
    from customlabels.service.context import open_context

    check_binding(settings)
    tune_allocator()
    ctx = open_context(settings)
    try:
        app = create_app(settings, ctx)
        config = uvicorn_config(app, settings, settings.host, settings.port, log_level=log_level)
        uvicorn.Server(config).run()
    finally:
        ctx.close()


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread; yield its base URL; stop it on exit.

    ``port=0`` picks a free port. The server has the limits of ``customlabels serve``
    (:func:`customlabels.api.limits.uvicorn_config`, from the app's settings).
    """
    import uvicorn

    from customlabels.api.limits import uvicorn_config

    server = uvicorn.Server(
        uvicorn_config(app, app.state.settings, host, port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    sockets = [s for srv in server.servers for s in srv.sockets]
    bound_port = sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
