"""A live server on 127.0.0.1 (free port) and a real boto3 ``rekognition`` client for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.service import ServiceSettings, open_context

from ._live import KEY, SECRET, Live, make_client


@pytest.fixture
def live(tmp_path: Path, bccd_buckets: Path) -> Iterator[Live]:
    settings = ServiceSettings(
        home=tmp_path / "home",
        buckets_dir=bccd_buckets,
        access_key_id=KEY,
        secret_access_key=SECRET,
        train_time_budget_s=20,
    )
    ctx = open_context(settings)
    try:
        with serve_in_thread(create_app(settings, ctx)) as url:
            yield Live(url, ctx, settings)
    finally:
        ctx.close()


@pytest.fixture
def client(live: Live) -> Any:
    return make_client(live.url)
