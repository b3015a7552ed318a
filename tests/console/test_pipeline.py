"""The pipeline page: results written by the pipeline's real worker (``process_image`` with the
tiny bee detector) on a watched bucket, a failed image with its error, and "add to dataset"."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from customlabels.pipeline.model import load_model
from customlabels.pipeline.worker import process_image
from customlabels.service import browse, projects

from .conftest import BUCKET, Console, Server

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
