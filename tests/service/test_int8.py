"""`export --int8`: the int8 bundle of the tiny real detector, its card, its calibration images
(the model's training split only) and its errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from customlabels.core.model_card import CARD_NAME, ONNX_NAME, ModelCard
from customlabels.errors import InvalidParameterError
from customlabels.inference.predictor import Predictor
from customlabels.service.int8 import TRAIN_MANIFEST, calibration_images, export_int8


@pytest.fixture(scope="module")
def int8_bundle(
    tiny_detector_dir: Path, bees_manifest: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("int8") / "bundle"
    return export_int8(
        tiny_detector_dir, out, calibration_manifest=bees_manifest, calibration_count=4
    )


def test_the_bundle_is_served_and_its_card_says_int8(
    int8_bundle: Path, tiny_detector_dir: Path, bees_manifest: Path
) -> None:
    assert sorted(p.name for p in int8_bundle.iterdir()) == [CARD_NAME, ONNX_NAME]
    fp32, card = ModelCard.load(tiny_detector_dir), ModelCard.load(int8_bundle)
    assert card.precision == "int8" and fp32.precision == "fp32"
    assert json.loads((int8_bundle / CARD_NAME).read_text())["format_version"] == 2
    q = card.quantization
    assert (q["format"], q["per_channel"], q["weights"], q["activations"]) == (
        "QDQ",
        True,
        "int8",
        "uint8",
    )
    assert q["reduce_range"] is True
    calibration = q["calibration"]
    assert calibration["images"] == 4 == len(calibration["refs"])
    assert set(calibration["refs"]) <= set(fp32.dataset["images"]["train"])
    assert calibration["manifest"] == str(bees_manifest) and calibration["split"] == "train"
    # float32 scores move aside: they were not measured on this graph
    assert card.metrics == {} and q["fp32_metrics"] == fp32.metrics
    assert len(q["fp32"]["sha256"]) == 64
    # what serving needs is the float32 card's
    assert (card.labels, card.input, card.head, card.thresholds, card.calibration) == (
        fp32.labels,
        fp32.input,
        fp32.head,
        fp32.thresholds,
        fp32.calibration,
    )
    image = next(iter(sorted((bees_manifest.parent / "images").glob("*.jpg"))))
    dets = Predictor.load(int8_bundle).predict(Image.open(image).convert("RGB"))
    assert dets.boxes is not None and len(dets) > 0


def test_calibration_images_come_from_the_training_split(
    tiny_detector_dir: Path, bees_manifest: Path, tmp_path: Path
) -> None:
    card = ModelCard.load(tiny_detector_dir)
    train = card.dataset["images"]["train"]
    files, source = calibration_images(card, tiny_detector_dir, bees_manifest, count=1000)
    assert sorted(source["refs"]) == sorted(train)  # all of them, none of the other 552 lines
    assert all(f.is_file() for f in files) and len(files) == len(train)
    # the same draw each time; a smaller count takes a subset
    again, _ = calibration_images(card, tiny_detector_dir, bees_manifest, count=5)
    assert again == calibration_images(card, tiny_detector_dir, bees_manifest, count=5)[0]
    assert len(again) == 5 and set(again) <= set(files)
    # a service-trained version: VERSION/model beside VERSION/input/train.manifest
    version = tmp_path / "version"
    (version / "model").mkdir(parents=True)
    lines = [line for line in bees_manifest.read_text().splitlines() if line.strip()]
    lines = [line for line in lines if json.loads(line)["source-ref"] in set(train)]
    for line in lines:
        key = json.loads(line)["source-ref"].split("/", 3)[3]
        (version / "input" / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bees_manifest.parent / key, version / "input" / key)
    (version / "input" / "train.manifest").write_text("\n".join(lines) + "\n")
    assert (version / "model" / TRAIN_MANIFEST).resolve().is_file()
    found, source = calibration_images(card, version / "model", count=3)
    assert len(found) == 3 and source["manifest"].endswith("input/train.manifest")


def test_errors(
    tiny_detector_dir: Path,
    int8_bundle: Path,
    bees_manifest: Path,
    bccd_manifest: Path,
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidParameterError, match="--calibration-manifest"):
        export_int8(tiny_detector_dir, tmp_path / "a")
    with pytest.raises(InvalidParameterError, match="no image of the model's training split"):
        export_int8(tiny_detector_dir, tmp_path / "b", calibration_manifest=bccd_manifest)
    with pytest.raises(InvalidParameterError, match="already an int8 model"):
        export_int8(int8_bundle, tmp_path / "c", calibration_manifest=bees_manifest)
    with pytest.raises(InvalidParameterError, match="expected a model folder"):
        export_int8(bees_manifest.parent, tmp_path / "d", calibration_manifest=bees_manifest)
    with pytest.raises(InvalidParameterError, match="expected ≥ 1"):
        export_int8(
            tiny_detector_dir,
            tmp_path / "e",
            calibration_manifest=bees_manifest,
            calibration_count=0,
        )
    assert not any(tmp_path.iterdir())  # nothing written on any of these


def test_a_classifier_keeps_its_top_label(
    tiny_classifier_dir: Path, bee_crops_manifest: Path, tmp_path: Path
) -> None:
    """12 held-out crops: float32's top label kept on at least 10 and the softmax within 0.1
    (median of the largest per-crop difference). Measured: 12 of 12, median 0.037; with 8-bit
    weights (no reduce_range) 9 of 12 and 0.105, which this rejects."""
    import numpy as np

    bundle = export_int8(
        tiny_classifier_dir, tmp_path / "b", calibration_manifest=bee_crops_manifest
    )
    assert ModelCard.load(bundle).quantization["reduce_range"] is True
    fp32, int8 = Predictor.load(tiny_classifier_dir), Predictor.load(bundle)
    images = fp32.card.dataset["images"]
    seen = {ref.rsplit("/", 1)[-1] for ref in [*images["train"], *images["validation"]]}
    crops = sorted((bee_crops_manifest.parent / "images").rglob("*.jpg"))
    held_out = [p for p in crops if p.name not in seen][::50][:12]
    kept, diffs = 0, []
    for path in held_out:
        image = Image.open(path).convert("RGB")
        a, b = fp32.predict(image).raw_scores, int8.predict(image).raw_scores
        assert a is not None and b is not None
        kept += int(np.argmax(a) == np.argmax(b))
        diffs.append(float(np.abs(a - b).max()))
    assert len(held_out) == 12 and kept >= 10 and float(np.median(diffs)) <= 0.1
