"""Bootstrap intervals over test images and the paired F1 difference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.evaluation import detection_metrics
from customlabels.evaluation.bootstrap import (
    bootstrap_intervals,
    paired_difference,
    resample_weights,
)


def _images(n: int, hit_rate: float, seed: int) -> tuple[list[ImageRecord], list[Detections]]:
    """``n`` images with one box each; the model finds it with probability ``hit_rate`` and
    otherwise puts a false positive elsewhere."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(n):
        gts.append(ImageRecord("x.jpg", (100, 100), boxes=[[10, 10, 50, 50]], box_labels=[0]))
        box = [10, 10, 50, 50] if rng.random() < hit_rate else [60, 60, 90, 90]
        preds.append(Detections(np.array([0.9]), np.array([0]), np.array([box], dtype=float)))
    return gts, preds


def test_weights_draw_every_image_count_times() -> None:
    w = resample_weights(7, n_boot=50, seed=1)
    assert w.shape == (50, 7) and (w.sum(axis=1) == 7).all()
    np.testing.assert_array_equal(w, resample_weights(7, n_boot=50, seed=1))
    assert not np.array_equal(w, resample_weights(7, n_boot=50, seed=2))


def test_intervals_are_seeded_and_contain_the_estimate() -> None:
    gts, preds = _images(40, 0.7, seed=0)
    m = detection_metrics(gts, preds, ["a"], {"a": 0.5})
    a = bootstrap_intervals(m.per_label, 40, n_boot=500, seed=3)
    b = bootstrap_intervals(m.per_label, 40, n_boot=500, seed=3)
    assert a == b
    iv = a.per_label["a"]["f1"]
    assert iv.low < m.f1 < iv.high
    assert a.overall["f1"] == iv  # one label: micro = that label


def test_intervals_narrow_with_more_images() -> None:
    widths = []
    for n in (20, 400):
        gts, preds = _images(n, 0.7, seed=n)
        m = detection_metrics(gts, preds, ["a"], {"a": 0.5})
        iv = bootstrap_intervals(m.per_label, n, n_boot=500).per_label["a"]["recall"]
        widths.append(iv.high - iv.low)
    assert widths[1] < widths[0] / 2.5  # ~ 1/sqrt(n): sqrt(20) ≈ 4.5 times narrower


def test_perfect_model_has_a_degenerate_interval() -> None:
    gts, preds = _images(15, 1.0, seed=0)
    m = detection_metrics(gts, preds, ["a"], {"a": 0.5})
    iv = bootstrap_intervals(m.per_label, 15, n_boot=200).per_label["a"]
    assert (iv["precision"].low, iv["precision"].high, iv["f1"].low) == (1.0, 1.0, 1.0)


def test_label_without_ground_truth_has_undefined_recall_interval() -> None:
    gts, preds = _images(10, 1.0, seed=0)
    m = detection_metrics(gts, preds, ["a", "b"], {"a": 0.5, "b": 0.5})
    iv = bootstrap_intervals(m.per_label, 10, n_boot=100).per_label["b"]
    assert math.isnan(iv["recall"].low) and iv["recall"].to_list() == [None, None]


def test_paired_difference_same_model_is_zero_and_not_significant() -> None:
    gts, preds = _images(30, 0.6, seed=1)
    m = detection_metrics(gts, preds, ["a"], {"a": 0.5})
    d = paired_difference(list(m.per_label.values()), list(m.per_label.values()), 30)
    assert d.difference == 0.0 and not d.significant and d.p_value == 1.0
    assert (d.interval.low, d.interval.high) == (0.0, 0.0)


@pytest.mark.parametrize(("rate_b", "significant"), [(0.95, True), (0.45, False)])
def test_paired_difference_detects_a_real_gap(rate_b: float, significant: bool) -> None:
    gts, preds_a = _images(60, 0.4, seed=5)
    _, preds_b = _images(60, rate_b, seed=6)
    a = detection_metrics(gts, preds_a, ["a"], {"a": 0.5}).per_label["a"]
    b = detection_metrics(gts, preds_b, ["a"], {"a": 0.5}).per_label["a"]
    d = paired_difference([a], [b], 60, n_boot=1000, seed=0)
    assert d.difference == pytest.approx(b.at_threshold.f1 - a.at_threshold.f1)
    assert d.significant is significant
    assert d.interval.low <= d.difference <= d.interval.high


def test_group_weights_draw_whole_groups() -> None:
    groups = np.array([5, 5, 5, 9, 9, 2])
    w = resample_weights(6, n_boot=200, seed=0, groups=groups)
    assert w.shape == (200, 6)
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 1] == w[:, 2]).all() and (w[:, 3] == w[:, 4]).all()
    # 3 groups drawn per resample: image counts are sums of whole groups
    assert set(np.unique(w.sum(axis=1) % 1).tolist()) == {0}
    np.testing.assert_array_equal(w, resample_weights(6, n_boot=200, seed=0, groups=groups))


def test_group_interval_is_wider_when_scenes_decide() -> None:
    """40 images in 4 scenes of 10: the model finds everything in two scenes and nothing in
    the other two. Images look independent, scenes are not: the cluster interval says so."""
    gts, preds = [], []
    for scene in range(4):
        g, p = _images(10, 1.0 if scene % 2 else 0.0, seed=scene)
        gts += g
        preds += p
    m = detection_metrics(gts, preds, ["x"], thresholds={"x": 0.5})
    groups = np.repeat(np.arange(4), 10)
    by_image = bootstrap_intervals(m.per_label, 40, n_boot=500, seed=0).overall["f1"]
    by_group = bootstrap_intervals(m.per_label, 40, n_boot=500, seed=0, groups=groups)
    f1 = by_group.overall["f1"]
    assert by_group.over.startswith("groups")
    assert f1.high - f1.low > 2 * (by_image.high - by_image.low)
    assert f1.low <= m.f1 <= f1.high
