"""The pipeline page: results written by the pipeline's real worker (``process_image`` with the
tiny bee detector) on a watched bucket, a failed image with its error, and "add to dataset"."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from customlabels.pipeline.model import load_model
from customlabels.pipeline.worker import process_image
from customlabels.service import browse, projects

from .conftest import BUCKET, KEY, SECRET, Console, Server, wait_for

FRAME = "1085701-214827957_jpg.rf.a2e359ad921222f7f939e1b7cc5082b9.jpg"


@pytest.fixture
def watched(server: Server, tiny_detector_dir: Path) -> Iterator[str]:
    bucket = server.buckets / "watched"
    (bucket / "in").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(server.buckets / BUCKET / "images" / FRAME, bucket / "in" / "frame.jpg")
    (bucket / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    store = server.ctx.buckets.store("watched")
    model = load_model(tiny_detector_dir)
    for key in ("in/frame.jpg", "in/broken.jpg"):
        process_image(store, key, model)
    server.settings.pipeline_bucket = "watched"
    try:
        yield "watched"
    finally:
        server.settings.pipeline_bucket = None


def test_without_a_watched_bucket_the_page_says_how(console: Console) -> None:
    page = console.get("/console/pipeline").text
    assert "This server watches no bucket." in page and "--pipeline-bucket" in page


def test_results_failures_and_add_to_dataset(
    console: Console, server: Server, watched: str
) -> None:
    page = console.get("/console/pipeline").text
    assert "Bucket <strong>watched</strong>" in page
    assert "in/frame.jpg" in page
    assert "%</span>" in page or "nothing detected" in page
    assert "<strong>in/broken.jpg</strong>: <code>InvalidImageFormatException</code>" in page
    image = console.get("/console/pipeline/image", params={"key": "in/frame.jpg"})
    assert image.headers["content-type"] == "image/jpeg"
    outside = console.get(
        "/console/pipeline/image", params={"key": "../bee-detection-demo/output.manifest"}
    )
    assert "InvalidS3ObjectException" in outside.text

    console.post("/console/projects", {"name": "from-pipeline"})
    console.get("/console/pipeline")
    added = console.post(
        "/console/pipeline/add",
        {"key": "in/frame.jpg", "project": "from-pipeline", "dataset_type": "TRAIN"},
    )
    assert "in/frame.jpg added to from-pipeline TRAIN with the model&#39;s" in added.text
    ds = projects.describe_projects(server.ctx, ["from-pipeline"])["ProjectDescriptions"][0]
    entries, total = browse.browse_entries(
        server.ctx, ds["Datasets"][0]["DatasetArn"], browse.EntryFilter()
    )
    assert total == 1 and entries[0].source_ref == "s3://watched/in/frame.jpg"
    assert entries[0].size_wh == (990, 621)
    failed = console.post(
        "/console/pipeline/add",
        {"key": "in/broken.jpg", "project": "from-pipeline", "dataset_type": "TRAIN"},
    )
    assert "the pipeline failed on this image" in failed.text


def test_results_show_the_models_boxes_in_label_colours(
    console: Console, server: Server, watched: str
) -> None:
    """Each box of a result is an SVG rect over the image (pixels from the relative geometry),
    stroked in the label's colour, as on the image browser; an image-level label has none.
    The result is written as the worker writes one (the tiny detector may find nothing)."""
    from customlabels.console.web import label_colour

    bucket = server.buckets / watched
    shutil.copyfile(bucket / "in" / "frame.jpg", bucket / "in" / "scripted.jpg")
    labels = [
        {"Name": "bee", "Confidence": 91.0, "Geometry": _box(0.1, 0.2, 0.05, 0.08)},
        {"Name": "queen", "Confidence": 64.5, "Geometry": _box(0.5, 0.25, 0.1, 0.1)},
        {"Name": "<hive>", "Confidence": 55.0},
    ]
    (bucket / "in" / "scripted.jpg.json").write_text(
        json.dumps({"ProcessedAt": "2026-11-30T03:00:00Z", "CustomLabels": labels})
    )
    page = console.get("/console/pipeline").text
    drawn = r'<svg viewBox="0 0 990 621" role="img" aria-label="in/scripted.jpg: (\d+) box\(es\)">'
    svg = re.search(drawn + r"(.*?)</svg>", page, re.S)
    assert svg is not None and svg.group(1) == "2"
    assert 'href="/console/pipeline/image?key=in%2Fscripted.jpg"' in svg.group(2)
    rects = re.findall(
        r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"[^>]*'
        r' stroke="([^"]+)"[^>]*><title>([^<]+)</title>',
        svg.group(2),
    )
    assert [
        (round(float(x)), round(float(y)), colour, name) for x, y, _, _, colour, name in rects
    ] == [
        (99, 124, label_colour("bee"), "bee"),
        (495, 155, label_colour("queen"), "queen"),
    ]
    assert "&lt;hive&gt; 55%" in page and "<hive>" not in page


def _box(left: float, top: float, width: float, height: float) -> dict[str, object]:
    return {"BoundingBox": {"Left": left, "Top": top, "Width": width, "Height": height}}


def test_a_server_with_a_pipeline_model_processes_its_bucket(
    tmp_path: Path, tiny_detector_dir: Path, bee_buckets: Path
) -> None:
    """``serve --pipeline-bucket live --pipeline-model DIR``: the app's lifespan starts the
    embedded pipeline (its worker processes load the model), images dropped into the bucket get
    their results, the page shows them and the queue's counts; shutdown stops it."""
    from customlabels.api import create_app
    from customlabels.api.server import serve_in_thread
    from customlabels.service import ServiceSettings

    inbox = tmp_path / "buckets" / "live" / "in"
    inbox.mkdir(parents=True)
    settings = ServiceSettings(
        home=tmp_path / "home",
        buckets_dir=tmp_path / "buckets",
        access_key_id=KEY,
        secret_access_key=SECRET,
        pipeline_bucket="live",
        pipeline_model=tiny_detector_dir,
    )
    app = create_app(settings)
    with serve_in_thread(app) as url, Console(url) as c:
        c.sign_in()
        assert "This server processes it with the model in" in c.get("/console/pipeline").text
        shutil.copyfile(bee_buckets / BUCKET / "images" / FRAME, inbox / "frame.jpg")
        (inbox / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        wait_for(
            lambda: (
                (inbox / "frame.jpg.json").is_file() and (inbox / "broken.jpg.error.json").is_file()
            ),
            180,
        )
        page = c.get("/console/pipeline").text
        assert "in/frame.jpg ·" in page
        assert "<strong>in/broken.jpg</strong>: <code>InvalidImageFormatException</code>" in page
        counts = dict(re.findall(r"<dt>([a-z ]+)</dt><dd>(\d+)</dd>", page))
        assert sum(int(n) for n in counts.values()) == 2, counts
        assert app.state.pipeline.running
    assert not app.state.pipeline.running
