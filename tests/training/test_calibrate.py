"""Calibrated confidence: the isotonic fit, per-label vs pooled maps, thresholds on its scale,
and a model whose raw scores are shifted still reporting the same calibrated confidences."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import customlabels.inference.predictor as predictor_module
from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.core.model_card import ModelCard
from customlabels.evaluation.reliability import reliability
from customlabels.inference.calibration import Calibration
from customlabels.inference.predictor import Predictor
from customlabels.training.calibrate import (
    MIN_CALIBRATION_INSTANCES,
    MIN_OWN_INSTANCES,
    fit_calibration,
    fit_score_map,
    isotonic,
)


@pytest.mark.parametrize(
    ("y", "w", "values", "starts"),
    [
        ([0.0, 1.0, 0.0, 1.0], [1, 1, 1, 1], [0.0, 0.5, 1.0], [0, 1, 3]),
        ([1.0, 0.0], [3, 1], [0.75], [0]),
        ([0.2, 0.2, 0.9], [1, 1, 1], [0.2, 0.9], [0, 2]),  # ties pool: strictly increasing
        ([0.1, 0.4, 0.7], [1, 2, 3], [0.1, 0.4, 0.7], [0, 1, 2]),
    ],
)
def test_isotonic_pools_adjacent_violators(
    y: list[float], w: list[float], values: list[float], starts: list[int]
) -> None:
    v, weights, s = isotonic(np.array(y), np.array(w, dtype=float))
    np.testing.assert_allclose(v, values)
    assert s == starts and weights.sum() == pytest.approx(sum(w))


def _sample(n: int, top: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores in 0.05–``top`` (a CPU-budget FCOS tops out near 0.56) whose true
    P(correct) rises linearly to 0.97 at the top."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.05, top, n)
    p = (raw - 0.05) / (top - 0.05) * 0.97
    return raw, rng.random(n) < p


def test_fit_turns_low_raw_scores_into_probabilities() -> None:
    raw, ok = _sample(4000, 0.56, seed=0)
    score_map = fit_score_map(raw, ok)
    test_raw, test_ok = _sample(4000, 0.56, seed=1)
    before, after = (
        reliability(test_raw, test_ok).ece,
        reliability(score_map(test_raw), test_ok).ece,
    )
    assert before > 0.15 and after < 0.04, (before, after)
    assert score_map(np.array([0.55]))[0] > 0.85  # "90" is reachable
    cal = score_map(np.sort(test_raw))
    assert np.all(np.diff(cal) > 0)  # strictly increasing: the raw ranking (AP) is kept
    assert score_map.calibrated[0] > 0 and score_map.calibrated[-1] < 1  # (tp+1)/(n+2)


def _records_and_preds(
    counts: dict[int, int], seed: int, shift: float = 1.0
) -> tuple[list[ImageRecord], list[Detections]]:
    """One image per ground-truth box; label ``k`` has ``counts[k]`` boxes; each image gets a
    hit (score rising with the box index) and a false positive, raw scores × ``shift``."""
    rng = np.random.default_rng(seed)
    records, preds = [], []
    for label, n in counts.items():
        for _ in range(n):
            records.append(
                ImageRecord("x.jpg", (100, 100), boxes=[[10, 10, 50, 50]], box_labels=[label])
            )
            hit, miss = rng.uniform(0.3, 0.6), rng.uniform(0.05, 0.4)
            preds.append(
                Detections(
                    np.array([hit, miss]) * shift,
                    np.array([label, label]),
                    np.array([[10, 10, 50, 50], [60, 60, 90, 90]], dtype=float),
                )
            )
    return records, preds


def test_labels_with_little_evidence_use_the_pooled_map_and_say_so() -> None:
    records, preds = _records_and_preds({0: 60, 1: 3}, seed=0)
    fit = fit_calibration(records, preds, ["bee", "queen", "drone"], detection=True)
    ev = fit.card["evidence"]
    assert (
        ev["bee"]["map"] == "own" and ev["bee"]["validation_instances"] == 60 >= MIN_OWN_INSTANCES
    )
    assert (
        ev["queen"]["map"] == "pooled"
        and "3 validation boxes (a guess)" in ev["queen"]["threshold"]
    )
    assert ev["drone"]["threshold"] == "pooled: 0 validation boxes (a guess)"
    assert set(fit.card["labels"]) == {"bee"}
    # thresholds live on the calibrated scale: a kept bee is right more often than not
    assert fit.calibration.map_for("bee") is not None
    assert 0.5 <= fit.thresholds["bee"] <= 1.0
    round_trip = Calibration.from_card(["bee", "queen", "drone"], fit.card)
    x = np.linspace(0.05, 0.6, 20)
    ids = np.repeat([0, 1, 2], [7, 7, 6])
    np.testing.assert_allclose(round_trip.apply(x, ids), fit.calibration.apply(x, ids), atol=1e-5)


@pytest.mark.parametrize("shift", [0.5, 0.25])
def test_shifted_raw_scores_give_the_same_calibrated_confidences(shift: float) -> None:
    records, preds = _records_and_preds({0: 80, 1: 40}, seed=1)
    _, shifted = _records_and_preds({0: 80, 1: 40}, seed=1, shift=shift)
    a = fit_calibration(records, preds, ["bee", "pollenbee"], detection=True)
    b = fit_calibration(records, shifted, ["bee", "pollenbee"], detection=True)
    raw = np.linspace(0.05, 0.6, 50)
    ids = np.arange(50) % 2
    np.testing.assert_allclose(
        a.calibration.apply(raw, ids), b.calibration.apply(raw * shift, ids), atol=1e-5
    )
    assert a.thresholds == pytest.approx(b.thresholds, abs=1e-5)


def test_a_model_with_shifted_raw_scores_still_reports_calibrated_confidences(
    tiny_detector_dir: Path,
    tiny_detector_data,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the served path: the same ONNX model whose decoder's scores are halved (as a
    model whose raw scores top out lower), calibrated on its validation images, returns the
    same confidences as the unshifted one; its raw scores are the halved ones."""
    train, val, _, _ = tiny_detector_data
    images = [Image.open(r.path).convert("RGB") for r in [*val.images, *train.images[:6]]]
    records = [*val.images, *train.images[:6]]  # the tiny model finds little on 3 images

    def calibrated_copy(name: str) -> Predictor:
        folder = tmp_path / name
        shutil.copytree(tiny_detector_dir, folder)
        card = ModelCard.load(folder)
        card.calibration = {}
        card.save(folder)
        raw = [Predictor.load(folder).predict(im) for im in images]
        fit = fit_calibration(records, raw, card.labels, detection=True)
        card.calibration, card.thresholds = fit.card, fit.thresholds
        card.save(folder)
        return Predictor.load(folder)

    plain = calibrated_copy("plain")
    expected = [plain.predict(im) for im in images]
    decode = predictor_module.decode_fcos

    def halved(*args, **kwargs):  # type: ignore[no-untyped-def]
        boxes, scores, labels = decode(*args, **kwargs)
        return boxes, scores * 0.5, labels

    monkeypatch.setattr(predictor_module, "decode_fcos", halved)
    shifted = calibrated_copy("shifted")
    assert shifted.card.thresholds == pytest.approx(plain.card.thresholds, abs=1e-5)
    found = 0
    for im, want in zip(images, expected, strict=True):
        got = shifted.predict(im)
        assert got.raw_scores is not None and want.raw_scores is not None
        np.testing.assert_allclose(got.raw_scores, want.raw_scores * 0.5, atol=1e-9)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        found += len(got)
    assert found > 0


def test_too_little_validation_evidence_leaves_the_raw_scores() -> None:
    """Five validation boxes in all: no map (a flat one would make every confidence equal)."""
    records, preds = _records_and_preds({0: MIN_CALIBRATION_INSTANCES // 2}, seed=1)
    fit = fit_calibration(records, preds, ["bee"], detection=True)
    assert fit.card == {}
    scores = np.array([0.1, 0.5, 0.9])
    np.testing.assert_array_equal(fit.calibration.apply(scores, np.zeros(3, int)), scores)
    assert 0 < fit.thresholds["bee"] < 1
