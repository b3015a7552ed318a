"""One live server (real uvicorn, free port) for the console tests, on a bucket folder holding
the real bee dataset (555 images, hard-linked from ../shared/datasets), plus signed-in httpx
clients and, for the browser tests, one Playwright Chromium for the whole session."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.service import Context, ServiceSettings, open_context

KEY, SECRET = "AKIDCONSOLE", "console-secret-123"
BUCKET = "bee-detection-demo"
ARTIFACTS = Path(__file__).resolve().parents[2] / "runs" / "console-screenshots"


@dataclass
class Server:
    url: str
    ctx: Context
    settings: ServiceSettings
    buckets: Path
    app: Any


def _link_tree(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_file():
            try:
                os.link(item, dst / item.name)
            except OSError:
                shutil.copyfile(item, dst / item.name)


@pytest.fixture(scope="session")
def bee_buckets(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path) -> Path:
    """``--buckets`` folder: ``bee-detection-demo/{output.manifest, images/}`` (real bees),
    ``bccd-demo/{images/, voc/}`` (real blood cells, Pascal VOC) and an empty ``models-out``."""
    root = tmp_path_factory.mktemp("console-buckets")
    bees = datasets_dir / "bees"
    _link_tree(bees / "images", root / BUCKET / "images")
    shutil.copyfile(bees / "output.manifest", root / BUCKET / "output.manifest")
    bccd = datasets_dir / "bccd"
    _link_tree(bccd / "images", root / "bccd-demo" / "images")
    _link_tree(bccd / "voc", root / "bccd-demo" / "voc")
    (root / "models-out").mkdir()
    return root


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, bee_buckets: Path) -> Iterator[Server]:
    settings = ServiceSettings(
        home=tmp_path_factory.mktemp("console-home"),
        buckets_dir=bee_buckets,
        access_key_id=KEY,
        secret_access_key=SECRET,
        train_time_budget_s=60,
    )
    ctx = open_context(settings)
    app = create_app(settings, ctx)
    try:
        with serve_in_thread(app) as url:
            yield Server(url, ctx, settings, bee_buckets, app)
    finally:
        ctx.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class Console:
    """A browser-like client (signed in after :meth:`sign_in`): follows redirects, keeps the
    cookie, posts with the page's CSRF token."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=True, timeout=60)
        self.csrf = ""

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def get(self, path: str, **kw: Any) -> httpx.Response:
        r = self.http.get(path, **kw)
        if 'name="csrf"' in r.text:
            self.csrf = csrf_of(r.text)
        return r

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        r = self.http.post(path, data={"csrf": self.csrf, **(data or {})}, **kw)
        if 'name="csrf"' in r.text:
            self.csrf = csrf_of(r.text)
        return r

    def sign_in(self) -> httpx.Response:
        self.get("/console/sign-in")
        return self.post("/console/sign-in", {"access_key_id": KEY, "secret_access_key": SECRET})


@pytest.fixture
def console(server: Server) -> Iterator[Console]:
    c = Console(server.url)
    r = c.sign_in()
    assert r.status_code == 200, r.text
    yield c
    c.http.close()


@pytest.fixture(scope="session")
def bee_project(server: Server) -> str:
    """A project ``bees-shared`` with the bee manifest imported as its TRAIN dataset."""
    c = Console(server.url)
    c.sign_in()
    c.post("/console/projects", {"name": "bees-shared"})
    r = c.post(
        "/console/projects/bees-shared/datasets",
        {"dataset_type": "TRAIN", "bucket": BUCKET, "key": "output.manifest"},
    )
    assert r.status_code == 200, r.text
    c.http.close()
    return "bees-shared"


@pytest.fixture(scope="session")
def model_project(
    server: Server, tiny_detector_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """Project ``bees-model`` with ``v1``: a copy of the session's tiny real bee detector,
    evaluated (``customlabels evaluate``'s library call) on 10 real bee images."""
    from customlabels.evaluation.outputs import evaluate_model
    from customlabels.service import projects
    from customlabels.service.versions import import_model_version

    model = tmp_path_factory.mktemp("console-model") / "bees-tiny"
    shutil.copytree(tiny_detector_dir, model, ignore=shutil.ignore_patterns("checkpoints"))
    lines = (server.buckets / BUCKET / "output.manifest").read_text().splitlines()
    chosen = [ln for ln in lines if "1085701-214827957" in ln or "Beehive---3-14" in ln][:10]
    test = model.parent / "test.manifest"
    test.write_text("\n".join(chosen) + "\n")
    evaluate_model(
        model,
        test,
        model / "evaluation",
        update_card=False,
        report=False,
        n_boot=50,
        bucket_map={BUCKET: server.buckets / BUCKET},
    )
    arn = projects.create_project(server.ctx, "bees-model")["ProjectArn"]
    import_model_version(server.ctx, arn, "v1", model)
    import_model_version(server.ctx, arn, "v2", tiny_detector_dir)
    return "bees-model", "v1"


@pytest.fixture(scope="session")
def scripted_version(
    server: Server,
    model_project: tuple[str, str],
    tiny_detector_dir: Path,
    scripted_evaluation: Callable[..., object],
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """Version ``scripted`` of the model project: the tiny detector's folder with an
    evaluation written from scripted predictions (on both sides of the assumed thresholds)."""
    from customlabels.service import projects, versions

    model = tmp_path_factory.mktemp("scripted") / "model"
    shutil.copytree(tiny_detector_dir, model, ignore=shutil.ignore_patterns("checkpoints"))
    lines = (server.buckets / BUCKET / "output.manifest").read_text().splitlines()
    test = model.parent / "test.manifest"
    test.write_text("\n".join(ln for ln in lines if "Beehive---3-14" in ln) + "\n")
    scripted_evaluation(model, test, model / "evaluation", {BUCKET: server.buckets / BUCKET})
    project, _ = model_project
    arn = projects.project_arn_of(server.ctx, project)
    versions.import_model_version(server.ctx, arn, "scripted", model)
    return "scripted"


def wait_for(check: Any, timeout_s: float = 60.0) -> None:
    """Poll ``check()`` until true (the serving pool loads sessions in the background)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


# --- the browser: one Chromium per session (tests/conftest.py), a fresh context per test ---


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    pg = context.new_page()
    # Service errors answer 4xx, which Chromium also logs as a failed resource; the tests assert
    # on the error shown on the page instead. Script errors and CSP violations still fail.
    expected = "Failed to load resource: the server responded with a status of 4"
    pg.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and not m.text.startswith(expected) else None
        ),
    )
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"browser console errors (CSP violations included): {errors}"


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Any) -> None:
    page.goto("/")
    page.get_by_label("Access key id").fill(KEY)
    page.get_by_label("Secret access key").fill(SECRET)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {KEY}.").wait_for()
