"""Precision–recall curves, COCO-style average precision, and thresholds chosen by F1.

All functions take a flat list of scored predictions of ONE label (confidences 0–1) with a
true-positive flag each, and the number of ground-truth instances of that label. "Kept at
threshold t" means ``score >= t``.

Undefined ratios are ``nan``: recall without ground truth; precision and F1 with neither a kept
prediction nor ground truth. Precision with ground truth but nothing kept is 0 (nothing found).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from customlabels.core.boxes import FloatArray

__all__ = [
    "RECALL_POINTS",
    "PRCurve",
    "ThresholdScores",
    "average_precision",
    "best_f1_threshold",
    "pr_curve",
    "ratios",
    "scores_at_threshold",
]

BoolArray = npt.NDArray[np.bool_]

#: COCO's 101 recall points 0.00, 0.01, ..., 1.00.
RECALL_POINTS: FloatArray = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class ThresholdScores:
    """Counts and ratios when keeping predictions with ``score >= threshold`` (0–1)."""

    threshold: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class PRCurve:
    """The precision–recall curve, one point per distinct confidence, highest first.

    Attributes:
        thresholds: float ``(K,)`` distinct confidences, decreasing.
        precision: float ``(K,)`` precision keeping predictions ``>= thresholds[k]``.
        recall: float ``(K,)`` recall at the same points (``nan`` without ground truth).
        f1: float ``(K,)``.
    """

    thresholds: FloatArray
    precision: FloatArray
    recall: FloatArray
    f1: FloatArray


def ratios(tp: float, fp: float, num_gt: float) -> tuple[float, float, float]:
    """``(precision, recall, f1)`` from counts, with the module's conventions for 0/0."""
    kept = tp + fp
    if kept == 0 and num_gt == 0:
        return math.nan, math.nan, math.nan
    precision = tp / kept if kept else 0.0
    recall = tp / num_gt if num_gt else math.nan
    f1 = 2 * tp / (kept + num_gt)  # 2TP / (2TP + FP + FN)
    return precision, recall, f1


def _sorted(scores: npt.ArrayLike, is_tp: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(is_tp, dtype=bool).reshape(-1)
    if s.shape != t.shape:
        raise ValueError(f"expected one flag per score, got {t.shape} flags and {s.shape} scores")
    order = np.argsort(-s, kind="stable")
    return s[order], t[order]


def pr_curve(scores: npt.ArrayLike, is_tp: npt.ArrayLike, num_gt: int) -> PRCurve:
    """The PR curve of one label (see :class:`PRCurve`)."""
    s, t = _sorted(scores, is_tp)
    tp = np.cumsum(t)
    kept = np.arange(1, len(s) + 1)
    # one point per distinct score: the last prediction of each run of equal scores
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True)) if len(s) else np.zeros(0, int)
    tp, kept = tp[last].astype(np.float64), kept[last].astype(np.float64)
    precision = tp / kept
    recall = tp / num_gt if num_gt else np.full(len(last), math.nan)
    f1 = 2 * tp / (kept + num_gt)
    return PRCurve(s[last], precision, recall, f1)


def average_precision(scores: npt.ArrayLike, is_tp: npt.ArrayLike, num_gt: int) -> float:
    """COCO 101-point interpolated average precision (as pycocotools' ``accumulate``).

    Returns ``nan`` when the label has no ground truth (pycocotools' ``-1``).
    """
    if num_gt == 0:
        return math.nan
    _, t = _sorted(scores, is_tp)
    if len(t) == 0:
        return 0.0
    tp = np.cumsum(t, dtype=np.float64)
    fp = np.cumsum(~t, dtype=np.float64)
    recall = tp / num_gt
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # precision envelope
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.zeros(len(RECALL_POINTS))
    valid = idx < len(t)
    q[valid] = precision[idx[valid]]
    return float(q.mean())


def scores_at_threshold(
    scores: npt.ArrayLike, is_tp: npt.ArrayLike, num_gt: int, threshold: float
) -> ThresholdScores:
    """Precision, recall and F1 of the predictions with ``score >= threshold``."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(is_tp, dtype=bool).reshape(-1)
    kept = s >= threshold
    tp = int(np.count_nonzero(t & kept))
    fp = int(np.count_nonzero(kept)) - tp
    p, r, f1 = ratios(tp, fp, num_gt)
    return ThresholdScores(float(threshold), p, r, f1, tp, fp, num_gt - tp)


def best_f1_threshold(
    scores: npt.ArrayLike, is_tp: npt.ArrayLike, num_gt: int, default: float = 0.5
) -> ThresholdScores:
    """The confidence that maximizes F1, with the scores there.

    The threshold is one of the predictions' confidences (the lowest one kept); when several
    give the same best F1 the highest is chosen (fewest predictions). When no threshold gives a
    true positive (the label is never found, or has no ground truth) the threshold is
    ``default``.
    """
    curve = pr_curve(scores, is_tp, num_gt)
    if num_gt == 0 or len(curve.f1) == 0 or not np.nanmax(curve.f1) > 0:
        return scores_at_threshold(scores, is_tp, num_gt, default)
    k = int(np.nanargmax(curve.f1))  # first maximum = highest threshold
    return scores_at_threshold(scores, is_tp, num_gt, float(curve.thresholds[k]))
