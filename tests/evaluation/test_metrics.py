"""Detection metrics: hand-computed cases, edge cases, and the pycocotools cross-check."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.errors import InvalidParameterError
from customlabels.evaluation import detection_metrics
from customlabels.evaluation.curves import average_precision, best_f1_threshold
from customlabels.evaluation.matching import match_boxes

from ._coco import coco_reference, fake_predictions, load_manifest_boxes


def rec(boxes: list[list[float]], labels: list[int], size: tuple[int, int] = (100, 100)):
    return ImageRecord(
        "s3://b/x.jpg",
        size,
        boxes=np.array(boxes, dtype=float).reshape(-1, 4),
        box_labels=np.array(labels, dtype=np.int64),
    )


def det(boxes: list[list[float]], labels: list[int], scores: list[float]) -> Detections:
    return Detections(
        scores=np.array(scores),
        class_ids=np.array(labels, dtype=np.int64),
        boxes=np.array(boxes, dtype=float).reshape(-1, 4),
    )


def test_one_tp_one_fp_higher_and_a_miss() -> None:
    # two true boxes; an FP at 0.9 elsewhere, a TP at 0.8 on the first box, the second missed
    gts = [rec([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
    preds = [det([[50, 50, 60, 60], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])]
    m = detection_metrics(gts, preds, ["a"]).per_label["a"]
    # sorted: FP (P=0, R=0), TP (P=1/2, R=1/2); envelope 0.5 for recall points 0.00..0.50
    assert m.ap50 == pytest.approx(51 / 101 * 0.5)
    assert m.ap50_95 == pytest.approx(m.ap50)  # exact boxes: TP at every IoU
    assert (m.best.threshold, m.best.precision, m.best.recall, m.best.f1) == (0.8, 0.5, 0.5, 0.5)
    assert (m.best.tp, m.best.fp, m.best.fn) == (1, 1, 1)
    at = detection_metrics(gts, preds, ["a"], thresholds={"a": 0.85}).per_label["a"]
    assert (at.at_threshold.precision, at.at_threshold.recall, at.at_threshold.f1) == (0, 0, 0)
    assert at.best == m.best  # the best-F1 threshold does not depend on the given one
    np.testing.assert_allclose(m.curve.precision, [0.0, 0.5])
    np.testing.assert_allclose(m.curve.recall, [0.0, 0.5])
    assert m.ar == pytest.approx(0.5)


def test_iou_threshold_is_inclusive_and_ap50_95_counts_iou() -> None:
    # IoU exactly 0.5: 10x10 truth, 10x20 prediction covering it
    gts = [rec([[0, 0, 10, 10]], [0])]
    m = detection_metrics(gts, [det([[0, 0, 10, 20]], [0], [0.7])], ["a"]).per_label["a"]
    assert m.ap50 == pytest.approx(1.0)
    assert m.ap50_95 == pytest.approx(0.1)  # a TP only at IoU 0.50 of the ten thresholds


@pytest.mark.parametrize(
    ("flags", "expected_ap"),
    [([True, False], 1.0), ([False, True], 0.5)],  # stable order decides within a tie
)
def test_tied_scores_keep_input_order_as_pycocotools(flags: list[bool], expected_ap: float):
    assert average_precision([0.5, 0.5], flags, 1) == pytest.approx(expected_ap)
    best = best_f1_threshold([0.5, 0.5], flags, 1)
    assert (best.threshold, best.f1) == (0.5, pytest.approx(2 / 3))  # a tie is kept whole


def test_tied_iou_goes_to_the_last_truth_box() -> None:
    gt = np.array([[0, 0, 10, 20], [0, 0, 20, 10]], dtype=float)  # both IoU 0.5 with pred 0
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 20]], dtype=float)
    is_tp = match_boxes(pred, gt)
    assert is_tp[0].tolist() == [True, True]  # pred 0 took box 1, leaving box 0 to pred 1
    ref = coco_reference([rec(gt.tolist(), [0, 0])], [det(pred.tolist(), [0, 0], [0.9, 0.8])], 1)
    m = detection_metrics(
        [rec(gt.tolist(), [0, 0])], [det(pred.tolist(), [0, 0], [0.9, 0.8])], ["a"]
    )
    assert m.per_label["a"].ap50 == pytest.approx(ref["ap50"][0], abs=1e-12)


def test_duplicate_predictions_are_false_positives() -> None:
    gts = [rec([[0, 0, 10, 10]], [0])]
    preds = [det([[0, 0, 10, 10], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])]
    best = detection_metrics(gts, preds, ["a"]).per_label["a"].best
    assert (best.threshold, best.tp, best.fp, best.precision) == (0.9, 1, 0, 1.0)


def test_empty_predictions() -> None:
    gts = [rec([[0, 0, 10, 10]], [0]), rec([], [])]
    m = detection_metrics(gts, [Detections.empty(), Detections.empty()], ["a"])
    a = m.per_label["a"]
    assert (a.ap50, a.ap50_95, a.num_predictions, a.num_gt) == (0.0, 0.0, 0, 1)
    assert (a.best.threshold, a.best.precision, a.best.recall, a.best.f1) == (0.5, 0, 0, 0)
    assert (m.map50, m.precision, m.recall, m.f1) == (0.0, 0.0, 0.0, 0.0)


def test_empty_ground_truth() -> None:
    gts = [rec([], []), rec([], [])]
    preds = [det([[0, 0, 5, 5]], [0], [0.6]), Detections.empty()]
    m = detection_metrics(gts, preds, ["a"])
    a = m.per_label["a"]
    assert math.isnan(a.ap50) and math.isnan(a.best.recall) and math.isnan(a.ar)
    assert (a.best.precision, a.best.f1, a.best.fp) == (0.0, 0.0, 1)
    assert math.isnan(m.map50)  # no label with ground truth: no mean
    assert m.precision == 0.0 and math.isnan(m.recall)


def test_label_never_predicted_counts_in_the_mean() -> None:
    gts = [rec([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])]
    preds = [det([[0, 0, 10, 10]], [0], [0.9])]
    m = detection_metrics(gts, preds, ["a", "b", "c"])  # "c": neither truth nor predictions
    assert m.per_label["a"].ap50 == pytest.approx(1.0)
    assert m.per_label["b"].ap50 == 0.0 and m.per_label["b"].num_predictions == 0
    assert math.isnan(m.per_label["c"].ap50)
    assert m.map50 == pytest.approx(0.5)  # mean over a and b only
    assert (m.precision, m.recall) == (1.0, 0.5)


def test_wrong_label_is_a_false_positive_and_a_miss() -> None:
    gts = [rec([[0, 0, 10, 10]], [0])]
    m = detection_metrics(gts, [det([[0, 0, 10, 10]], [1], [0.9])], ["a", "b"])
    assert m.per_label["a"].best.fn == 1 and m.per_label["b"].best.fp == 1


@pytest.mark.parametrize(
    ("gts", "preds", "message"),
    [
        ([rec([], [])], [], "one prediction set per image"),
        ([rec([[0, 0, 1, 1]], [3])], [Detections.empty()], "label ids in 0..0"),
        ([rec([], [])], [det([[0, 0, 1, 1]], [-1], [0.5])], "label ids in 0..0"),
        ([rec([], [])], [Detections.empty(with_boxes=False)], "expected boxes"),
    ],
)
def test_bad_input_is_refused(gts, preds, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        detection_metrics(gts, preds, ["a"])


def _check_against_coco(gts, preds, n_labels: int) -> None:
    labels = [f"l{c}" for c in range(n_labels)]
    m = detection_metrics(gts, preds, labels)
    ref = coco_reference(gts, preds, n_labels)
    for key in ("ap50", "ap50_95", "ar"):
        ours = np.array([getattr(m.per_label[name], key) for name in labels])
        ours = np.where(np.isnan(ours), -1, ours)
        np.testing.assert_allclose(ours, ref[key], atol=1e-4, err_msg=key)
    has = ref["ap50"] > -1
    assert m.map50 == pytest.approx(ref["ap50"][has].mean(), abs=1e-4)
    assert m.map50_95 == pytest.approx(ref["ap50_95"][has].mean(), abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pycocotools_on_random_boxes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gts = []
    for _ in range(25):
        n = int(rng.integers(0, 8))
        xy = rng.random((n, 2)) * 200
        gts.append(
            rec(
                np.concatenate([xy, xy + rng.random((n, 2)) * 60 + 5], 1).tolist(),
                rng.integers(0, 4, n).tolist(),
                size=(300, 300),
            )
        )
    preds = fake_predictions(gts, 4, per_image=20, seed=seed)
    # coarse scores make ties common, which exercise the tie order
    preds = [Detections(np.round(p.scores, 1), p.class_ids, p.boxes) for p in preds]
    _check_against_coco(gts, preds, 4)


def test_matches_pycocotools_on_real_shaped_predictions(bees_manifest: Path) -> None:
    gts, names = load_manifest_boxes(bees_manifest, 60)
    preds = fake_predictions(gts, len(names), per_image=100, seed=7)
    _check_against_coco(gts, preds, len(names))


def test_speed_100_images_300_predictions(bees_manifest: Path) -> None:
    """Not a timing assertion: records how long the validation-loop call takes."""
    gts, names = load_manifest_boxes(bees_manifest, 100)
    preds = fake_predictions(gts, len(names), per_image=300, seed=3)
    start = time.perf_counter()
    m = detection_metrics(gts, preds, names)
    elapsed = time.perf_counter() - start
    print(f"detection_metrics on 100 images x 300 predictions: {elapsed * 1000:.0f} ms")
    assert m.num_images == 100 and sum(x.num_predictions for x in m.per_label.values()) == 30_000
