"""Predictor, detect_bytes and `customlabels detect` on the session's tiny real models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from customlabels.errors import InvalidImageError, InvalidParameterError
from customlabels.inference.detect import detect_bytes
from customlabels.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bee_images(bees_manifest: Path) -> list[Path]:
    return sorted((bees_manifest.parent / "images").glob("*.jpg"))[:3]


def test_detector_boxes_in_original_pixels(tiny_detector_dir: Path, bee_images: list[Path]) -> None:
    predictor = Predictor.load(tiny_detector_dir)
    image = Image.open(bee_images[0]).convert("RGB")
    dets = predictor.predict(image)
    assert dets.boxes is not None and len(dets) > 0
    w, h = image.size
    assert np.all(dets.boxes >= 0) and np.all(dets.boxes[:, [0, 2]] <= w)
    assert np.all(dets.boxes[:, [1, 3]] <= h)
    assert np.all((dets.scores >= 0) & (dets.scores <= 1))
    assert np.all(np.diff(dets.scores) <= 1e-12)  # NMS output, highest first
    assert set(dets.class_ids.tolist()) <= set(range(len(predictor.labels)))


def test_classifier_scores_every_label(tiny_classifier_dir: Path, bee_crops_manifest: Path) -> None:
    predictor = Predictor.load(tiny_classifier_dir)
    path = next((bee_crops_manifest.parent / "images").rglob("*.jpg"))
    dets = predictor.predict(Image.open(path).convert("RGB"))
    assert dets.boxes is None
    assert len(dets) == len(predictor.labels)
    assert dets.raw_scores is not None and dets.raw_scores.sum() == pytest.approx(1.0)  # softmax
    # calibrated per label (P(the image has it)): each in 0–1, no longer summing to 1
    assert np.all((dets.scores >= 0) & (dets.scores <= 1))


def test_detect_bytes_response(tiny_detector_dir: Path, bee_images: list[Path]) -> None:
    predictor = Predictor.load(tiny_detector_dir)
    response = detect_bytes(predictor, bee_images[0].read_bytes(), min_confidence=0, max_results=7)
    labels = response["CustomLabels"]
    assert 0 < len(labels) <= 7
    confidences = [item["Confidence"] for item in labels]
    assert confidences == sorted(confidences, reverse=True)
    for item in labels:
        assert item["Name"] in predictor.labels
        box = item["Geometry"]["BoundingBox"]
        assert set(box) == {"Width", "Height", "Left", "Top"}
        assert all(0.0 <= v <= 1.0 for v in box.values())
    # Default thresholds: each label's assumed threshold from the card.
    default = detect_bytes(predictor, bee_images[0].read_bytes())["CustomLabels"]
    for item in default:
        assert item["Confidence"] >= 100 * predictor.card.thresholds[item["Name"]] - 1e-3


@pytest.mark.parametrize(
    ("data", "kwargs", "error"),
    [
        (b"not an image", {}, InvalidImageError),
        (b"\xff\xd8\xff\xe0truncated", {}, InvalidImageError),
        (None, {"min_confidence": 101}, InvalidParameterError),
        (None, {"max_results": -1}, InvalidParameterError),
    ],
)
def test_detect_bytes_errors(
    tiny_detector_dir: Path,
    bee_images: list[Path],
    data: bytes | None,
    kwargs: dict,
    error: type[Exception],
) -> None:
    predictor = Predictor.load(tiny_detector_dir)
    with pytest.raises(error):
        detect_bytes(predictor, data if data is not None else bee_images[0].read_bytes(), **kwargs)


def test_cli_detect_json_lines_without_torch(
    tiny_detector_dir: Path, bee_images: list[Path]
) -> None:
    """`customlabels detect` prints one response per image, in order, and never imports torch."""
    script = (
        "import sys\n"
        "from customlabels.cli.main import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    assert 'torch' not in sys.modules, 'detect imported torch'\n"
    )
    args = [
        sys.executable,
        "-c",
        script,
        "detect",
        str(tiny_detector_dir),
        *map(str, bee_images),
        "--min-confidence",
        "1",
        "--max-results",
        "3",
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["Image"] for line in lines] == [str(p) for p in bee_images]
    assert all(len(line["CustomLabels"]) <= 3 for line in lines)


def test_cli_detect_reports_a_bad_image_and_continues(
    tiny_detector_dir: Path, bee_images: list[Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"plain text")
    args = [
        sys.executable,
        "-m",
        "customlabels.cli.main",
        "detect",
        str(tiny_detector_dir),
        str(bad),
        str(bee_images[0]),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 1
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["Error"]["Code"] == "InvalidImageFormatException"
    assert "CustomLabels" in second
