from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from customlabels.pipeline.model import LoadedModel, load_model
from customlabels.pipeline.worker import Outcome, WorkerOptions, process_image
from customlabels.storage import LocalStore


@pytest.fixture(scope="module")
def model(model_dir: Path) -> LoadedModel:
    return load_model(model_dir, threads=1)


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "bucket")


def _put_file(store: LocalStore, key: str, src: Path) -> None:
    dest = store.path(key)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def test_writes_the_detect_custom_labels_response_plus_provenance(
    store: LocalStore, model: LoadedModel, bccd_images: list[Path]
) -> None:
    key = "test_images/a b/ü.jpg"
    _put_file(store, key, bccd_images[0])
    result = process_image(store, key, model)
    assert result.outcome is Outcome.WRITTEN
    doc = json.loads(store.get(key + ".json"))
    expected = model.detect(bccd_images[0].read_bytes(), "x", None, None)
    assert doc["CustomLabels"] == expected["CustomLabels"]
    for label in doc["CustomLabels"]:
        assert 0 <= label["Confidence"] <= 100
        assert label["Name"] in model.card.labels
        assert label["Confidence"] >= doc["Thresholds"][label["Name"]]
    assert doc["ModelVersion"] == model.version
    assert doc["MinConfidence"] is None
    assert set(doc["Thresholds"]) == set(model.card.labels)
    assert doc["Image"] == {
        "Bucket": "bucket",
        "Name": key,
        "ETag": store.head(key, with_etag=True).etag,  # type: ignore[union-attr]
        "Size": bccd_images[0].stat().st_size,
    }
    assert doc["ProcessingTimeMs"] > 0


def test_min_confidence_is_applied_and_recorded(
    store: LocalStore, model: LoadedModel, bccd_images: list[Path]
) -> None:
    _put_file(store, "i/a.jpg", bccd_images[1])
    process_image(store, "i/a.jpg", model, WorkerOptions(min_confidence=0.0, max_results=3))
    doc = json.loads(store.get("i/a.jpg.json"))
    assert doc["MinConfidence"] == 0.0 and doc["Thresholds"] is None
    assert len(doc["CustomLabels"]) <= 3


def test_current_result_is_not_recomputed_but_changed_image_is(
    store: LocalStore, model: LoadedModel, bccd_images: list[Path]
) -> None:
    key = "test_images/a.jpg"
    _put_file(store, key, bccd_images[0])
    assert process_image(store, key, model).outcome is Outcome.WRITTEN
    before = store.get(key + ".json")
    assert process_image(store, key, model).outcome is Outcome.SKIPPED
    assert store.get(key + ".json") == before  # not rewritten
    _put_file(store, key, bccd_images[1])  # new content, same key
    assert process_image(store, key, model).outcome is Outcome.WRITTEN
    doc = json.loads(store.get(key + ".json"))
    assert doc["Image"]["ETag"] == store.head(key, with_etag=True).etag  # type: ignore[union-attr]
    assert doc["Image"]["Size"] == bccd_images[1].stat().st_size


def _png(size_wh: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size_wh, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "aws_type"),
    [
        ("truncated.jpg", lambda good: good[: len(good) // 3], "InvalidImageFormatException"),
        ("text.jpg", lambda good: b"this is not an image\n", "InvalidImageFormatException"),
        ("notes.txt", lambda good: b"hello", "InvalidImageFormatException"),
        ("wide.png", lambda good: _png((5000, 64)), "ImageTooLargeException"),
        ("huge.jpg", lambda good: good[:3] + b"\0" * (16 * 1024 * 1024), "ImageTooLargeException"),
    ],
)
def test_bad_images_get_an_error_json(
    store: LocalStore,
    model: LoadedModel,
    bccd_images: list[Path],
    name: str,
    make,
    aws_type: str,  # type: ignore[no-untyped-def]
) -> None:
    key = f"test_images/{name}"
    store.put(key, make(bccd_images[0].read_bytes()), content_type="application/octet-stream")
    result = process_image(store, key, model)
    assert result.outcome is Outcome.FAILED
    doc = json.loads(store.get(key + ".error.json"))
    assert doc["Error"]["__type"] == aws_type
    assert doc["Error"]["message"]
    assert doc["ModelVersion"] == model.version
    assert store.head(key + ".json") is None
    # the same bad content is not retried...
    assert process_image(store, key, model).outcome is Outcome.SKIPPED
    # ...but a fixed image replaces the error with a result
    _put_file(store, key, bccd_images[0])
    assert process_image(store, key, model).outcome is Outcome.WRITTEN
    assert store.head(key + ".error.json") is None


def test_deleted_image_is_gone(store: LocalStore, model: LoadedModel) -> None:
    assert process_image(store, "test_images/missing.jpg", model).outcome is Outcome.GONE
