"""Classification metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.evaluation import classification_metrics


def img(*labels: int) -> ImageRecord:
    return ImageRecord("x.jpg", (64, 64), image_labels=list(labels))


def scores(*values: float) -> Detections:
    return Detections(scores=np.array(values), class_ids=np.arange(len(values)), boxes=None)


GTS = [img(0), img(0), img(1), img(1)]
PREDS = [scores(0.9, 0.1), scores(0.4, 0.6), scores(0.2, 0.8), scores(0.7, 0.3)]


def test_best_f1_thresholds_and_confusion() -> None:
    m = classification_metrics(GTS, PREDS, ["a", "b"])
    # label a: 0.9 T, 0.7 F, 0.4 T, 0.2 F -> F1 2/3, 1/2, 4/5, 2/3: best at 0.4
    a, b = m.per_label["a"], m.per_label["b"]
    assert (a.best.threshold, a.best.precision, a.best.recall) == (0.4, pytest.approx(2 / 3), 1.0)
    assert a.best.f1 == pytest.approx(0.8)
    assert (b.best.threshold, b.best.f1) == (0.3, pytest.approx(0.8))
    # top label, kept when above its threshold: a, b, b, a
    assert m.confusion.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert m.accuracy == 0.5
    assert a.num_gt == 2 and a.num_images == 2


def test_given_thresholds_send_low_scores_to_no_label() -> None:
    m = classification_metrics(GTS, PREDS, ["a", "b"], thresholds={"a": 0.95, "b": 0.5})
    assert m.confusion.tolist() == [[0, 1, 1], [0, 1, 1], [0, 0, 0]]
    assert m.accuracy == 0.25
    a, b = m.per_label["a"].at_threshold, m.per_label["b"].at_threshold
    assert (a.precision, a.recall, a.f1) == (0.0, 0.0, 0.0)
    assert (b.precision, b.recall, b.f1, b.tp, b.fp, b.fn) == (0.5, 0.5, 0.5, 1, 1, 1)
    assert m.per_label["a"].best.threshold == 0.4  # still reported beside the given one


def test_multi_label_compares_label_sets() -> None:
    gts = [img(0, 1), img(0)]
    preds = [scores(0.9, 0.8), scores(0.6, 0.7)]
    m = classification_metrics(gts, preds, ["a", "b"], {"a": 0.5, "b": 0.5}, multi_label=True)
    assert m.accuracy == 0.5
    assert m.confusion.tolist() == [[2, 2, 0], [1, 1, 0], [0, 0, 0]]
    assert (m.per_label["b"].at_threshold.tp, m.per_label["b"].at_threshold.fp) == (1, 1)
    assert (m.precision, m.recall) == (pytest.approx(3 / 4), 1.0)


def test_label_without_scores_and_images_without_labels() -> None:
    gts = [img(0), img()]
    preds = [Detections(np.array([0.9]), np.array([0]), None), Detections.empty(with_boxes=False)]
    m = classification_metrics(gts, preds, ["a", "b"], {"a": 0.5, "b": 0.5})
    assert m.per_label["b"].num_predictions == 0
    assert m.confusion.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert m.accuracy == 1.0
    assert m.per_label["a"].ap50 == pytest.approx(1.0)


def test_single_label_prediction_is_the_top_label_that_reaches_its_threshold() -> None:
    # the top score (a: 0.45) misses its threshold, b (0.3) reaches its own: detect returns b
    m = classification_metrics([img(1)], [scores(0.45, 0.3)], ["a", "b"], {"a": 0.5, "b": 0.2})
    assert m.confusion.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert m.accuracy == 1.0
    # per-label counts follow what detect returns: here b alone
    assert (m.per_label["b"].at_threshold.tp, m.per_label["a"].at_threshold.fp) == (1, 0)
