"""A live server on 127.0.0.1 (free port) and a real boto3 ``rekognition`` client for it.

The server (uvicorn in a thread, with the limits of ``customlabels serve``) starts once per
session; each test gets its own home folder: a fresh service context is swapped into the app
for the test and closed after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.service import ServiceSettings, open_context

from ._live import KEY, SECRET, Live, make_client


def _settings(home: Path, buckets: Path) -> ServiceSettings:
    return ServiceSettings(
        home=home,
        buckets_dir=buckets,
        access_key_id=KEY,
        secret_access_key=SECRET,
        train_time_budget_s=20,
    )


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, bccd_buckets: Path
) -> Iterator[tuple[FastAPI, str]]:
    """The session's server: its app and base URL."""
    ctx = open_context(_settings(tmp_path_factory.mktemp("live") / "home", bccd_buckets))
    app = create_app(ctx.settings, ctx)
    try:
        with serve_in_thread(app) as url:
            yield app, url
    finally:
        ctx.close()


@pytest.fixture
def live(tmp_path: Path, bccd_buckets: Path, live_server: tuple[FastAPI, str]) -> Iterator[Live]:
    """The session's server, serving a fresh home (``tmp_path/home``) for this test."""
    app, url = live_server
    ctx = open_context(_settings(tmp_path / "home", bccd_buckets))
    previous = app.state.ctx, app.state.settings
    app.state.ctx, app.state.settings = ctx, ctx.settings
    try:
        yield Live(url, ctx, ctx.settings)
    finally:
        app.state.ctx, app.state.settings = previous
        ctx.close()


@pytest.fixture
def client(live: Live) -> Any:
    return make_client(live.url)
