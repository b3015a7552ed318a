"""Fixtures of the evaluation tests: small test manifests beside the tiny real models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from customlabels.core.model_card import ModelCard
from customlabels.evaluation.outputs import EvaluationOutput, evaluate_model


def _subset_manifest(
    source: Path, model_dir: Path, out: Path, n_seen: int, n_unseen: int
) -> tuple[Path, str]:
    """Write a manifest of ``n_seen`` training images of the model (so the tiny model finds
    something) and ``n_unseen`` images it never saw; returns it and the bucket name."""
    card = ModelCard.load(model_dir)
    train = set(card.dataset["images"]["train"])
    used = train | set(card.dataset["images"]["validation"])
    lines = [x for x in source.read_text().splitlines() if x.strip()]
    refs = [json.loads(x)["source-ref"] for x in lines]
    seen = [x for x, r in zip(lines, refs, strict=True) if r in train][:n_seen]
    unseen = [x for x, r in zip(lines, refs, strict=True) if r not in used][-n_unseen:]
    out.write_text("\n".join(seen + unseen) + "\n")
    bucket = refs[0].split("/")[2]
    return out, bucket


@pytest.fixture(scope="session")
def detector_test_set(
    tmp_path_factory: pytest.TempPathFactory, tiny_detector_dir: Path, bees_manifest: Path
) -> tuple[Path, dict[str, Path]]:
    """``(manifest, bucket_map)``: 8 bee images, 3 seen in training and 5 not (tiny detector)."""
    folder = tmp_path_factory.mktemp("eval-bees")
    path, bucket = _subset_manifest(
        bees_manifest, tiny_detector_dir, folder / "test.manifest", 3, 5
    )
    return path, {bucket: bees_manifest.parent}


@pytest.fixture(scope="session")
def classifier_test_set(
    tmp_path_factory: pytest.TempPathFactory, tiny_classifier_dir: Path, bee_crops_manifest: Path
) -> tuple[Path, dict[str, Path]]:
    """``(manifest, bucket_map)``: 16 bee crops (8 seen in training, 8 not)."""
    folder = tmp_path_factory.mktemp("eval-crops")
    path, bucket = _subset_manifest(
        bee_crops_manifest, tiny_classifier_dir, folder / "test.manifest", 8, 8
    )
    return path, {bucket: bee_crops_manifest.parent}


@pytest.fixture(scope="session")
def detector_eval(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_detector_dir: Path,
    tiny_detector_data,  # type: ignore[no-untyped-def]
    detector_test_set: tuple[Path, dict[str, Path]],
) -> EvaluationOutput:
    model = tmp_path_factory.mktemp("det-model") / "bees-tiny"
    shutil.copytree(tiny_detector_dir, model)
    _calibrate_on_more_images(model, tiny_detector_data)
    manifest, buckets = detector_test_set
    return evaluate_model(model, manifest, bucket_map=buckets, n_boot=300)


def _calibrate_on_more_images(model: Path, data) -> None:  # type: ignore[no-untyped-def]
    """The tiny detector saw one validation box: too few for a calibration map, so training left
    its raw scores. Fit the map here on its training and validation frames (where it finds
    bees) so that the evaluation of a calibrated card is exercised."""
    from PIL import Image

    from customlabels.inference.predictor import Predictor
    from customlabels.training.calibrate import fit_calibration

    train, val, _, _ = data
    records = [*val.images, *train.images]
    predictor = Predictor.load(model)
    preds = [predictor.predict(Image.open(r.path).convert("RGB")) for r in records]
    card = ModelCard.load(model)
    fit = fit_calibration(records, preds, card.labels, detection=True)
    assert fit.card, "expected enough boxes on the tiny detector's frames for a calibration"
    card.calibration, card.thresholds = fit.card, fit.thresholds
    card.save(model)


@pytest.fixture(scope="session")
def classifier_eval(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_classifier_dir: Path,
    classifier_test_set: tuple[Path, dict[str, Path]],
) -> EvaluationOutput:
    manifest, buckets = classifier_test_set
    out = tmp_path_factory.mktemp("cls-eval")
    return evaluate_model(
        tiny_classifier_dir, manifest, out, bucket_map=buckets, n_boot=300, update_card=False
    )
