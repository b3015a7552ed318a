"""Calibrated confidence, fitted after training on the validation split (numpy only).

The raw FCOS score (``sqrt(p_class · p_centerness)``) of a CPU-budget detector tops out near
0.5 on objects it finds every time, so "90" meant nothing. After training, the kept model's
validation predictions are matched to the ground truth (IoU 0.5, as evaluation does), and an
**isotonic regression** of "true positive" on the raw score (pool-adjacent-violators, each
block's rate smoothed as ``(tp + 1) / (n + 2)`` so 4 hits out of 4 do not become "100 %
sure") gives the map raw → P(true positive). A label with at least
:data:`MIN_OWN_INSTANCES` validation instances gets its own map; the others use the map fitted
on all labels together (``pooled``), and the card says which (``evidence``).

The assumed thresholds are then chosen on the calibrated scale (best F1 on validation, shrunk
by evidence: :func:`customlabels.training.tasks.label_thresholds`), so the card's thresholds,
``--min-confidence`` and the API's ``MinConfidence`` are all on one scale: a detection kept at
"90" has P(true positive) ≥ 0.9 on data like the validation split.

Why hand-written: pool-adjacent-violators is twenty lines of numpy; scipy
(``scipy.optimize.isotonic_regression``) and scikit-learn are not in the install and would be
its largest dependencies.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.evaluation.metrics import classification_metrics, detection_metrics
from customlabels.evaluation.reliability import pooled_outcomes, reliability
from customlabels.inference.calibration import Calibration, ScoreMap
from customlabels.training.selection import label_thresholds

__all__ = [
    "MIN_CALIBRATION_INSTANCES",
    "MIN_OWN_INSTANCES",
    "MIN_THRESHOLD_INSTANCES",
    "CalibrationFit",
    "fit_calibration",
    "fit_score_map",
    "isotonic",
]

log = logging.getLogger(__name__)

#: Validation instances (boxes, or images for a classifier) a label needs for its own map.
MIN_OWN_INSTANCES = 30
#: Below this many validation instances of all labels together no map is fitted: a map from a
#: handful of outcomes is flat (every confidence the same), which says less than the raw score.
MIN_CALIBRATION_INSTANCES = 10
#: Below this many validation instances a label's threshold is mostly the pooled one: said so.
MIN_THRESHOLD_INSTANCES = 10
METHOD = "isotonic regression (pool-adjacent-violators), block rates (tp + 1) / (n + 2)"

FloatArray = npt.NDArray[np.float64]


def isotonic(y: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray, list[int]]:
    """Pool-adjacent-violators: the non-decreasing fit of ``y`` (in order) with weights ``w``.

    Returns:
        ``(values, weights, starts)`` of the blocks: each block's weighted mean, total weight
        and the index of its first element; values strictly increase from block to block.
    """
    values: list[float] = []
    weights: list[float] = []
    starts: list[int] = []
    for i, (yi, wi) in enumerate(zip(y.tolist(), w.tolist(), strict=True)):
        values.append(yi)
        weights.append(wi)
        starts.append(i)
        while len(values) > 1 and values[-2] >= values[-1]:
            v, wt = values.pop(), weights.pop()
            starts.pop()
            total = weights[-1] + wt
            values[-1] = (values[-1] * weights[-1] + v * wt) / total
            weights[-1] = total
    return np.array(values), np.array(weights), starts


def fit_score_map(scores: FloatArray, correct: npt.NDArray[np.bool_]) -> ScoreMap:
    """Isotonic map raw score -> P(correct), knots at each block's mean raw score.

    The blocks of a first fit get smoothed rates ``(tp + 1) / (n + 2)``; a second fit over the
    blocks (weighted by their size) restores monotonicity where smoothing broke it.
    """
    s = np.asarray(scores, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    if len(s) == 0:
        return ScoreMap((0.0, 1.0), (0.0, 1.0))
    order = np.argsort(s, kind="stable")
    s, ok = s[order], ok[order]
    # Equal raw scores form one observation, so knots are strictly increasing in raw score.
    uniq, first = np.unique(s, return_index=True)
    n = np.diff(np.append(first, len(s))).astype(np.float64)
    tp = np.add.reduceat(ok, first)
    _, n_blocks, starts = isotonic(tp / n, n)
    block_tp = np.add.reduceat(tp, starts)
    block_raw = np.add.reduceat(uniq * n, starts) / n_blocks
    smoothed = (block_tp + 1.0) / (n_blocks + 2.0)
    values, weights, starts2 = isotonic(smoothed, n_blocks)
    raw = np.add.reduceat(block_raw * n_blocks, starts2) / weights
    return ScoreMap(tuple(float(v) for v in raw), tuple(float(v) for v in values))


@dataclass
class CalibrationFit:
    """What :func:`fit_calibration` gives training.

    Attributes:
        card: ``model.json`` ``calibration``.
        thresholds: assumed thresholds per label on the calibrated scale, 0–1.
        summary: validation metrics at those thresholds, on calibrated scores.
        calibration: the fitted maps.
    """

    card: dict[str, Any]
    thresholds: dict[str, float]
    summary: dict[str, Any]
    calibration: Calibration


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def _metrics(
    records: Sequence[ImageRecord],
    preds: Sequence[Detections],
    labels: list[str],
    detection: bool,
    multi_label: bool,
) -> Any:
    if detection:
        return detection_metrics(records, preds, labels)
    return classification_metrics(records, preds, labels, multi_label=multi_label)


def fit_calibration(
    records: Sequence[ImageRecord],
    preds: Sequence[Detections],
    labels: list[str],
    *,
    detection: bool,
    multi_label: bool = False,
    min_own: int = MIN_OWN_INSTANCES,
) -> CalibrationFit:
    """Fit the maps on validation ``preds`` (raw scores 0–1) and choose the thresholds.

    Args:
        records: the validation images (labels index ``labels``).
        preds: the kept model's raw predictions on them, same order.
        min_own: validation instances a label needs for its own map.
    """
    raw = _metrics(records, preds, labels, detection, multi_label)
    total = sum(m.num_gt for m in raw.per_label.values())
    if total < MIN_CALIBRATION_INSTANCES:
        log.warning(
            "calibration: not fitted, %d validation %s (at least %d needed); confidences are the "
            "model's raw scores",
            total,
            "boxes" if detection else "images",
            MIN_CALIBRATION_INSTANCES,
        )
        return CalibrationFit(
            {}, label_thresholds(raw.per_label), raw.to_dict(), Calibration(tuple(labels))
        )
    pooled = fit_score_map(*pooled_outcomes(raw.per_label))
    own = {
        name: fit_score_map(m.matches.scores, m.matches.is_tp[0])
        for name, m in raw.per_label.items()
        if m.num_gt >= min_own
    }
    calibration = Calibration(tuple(labels), pooled, own)
    calibrated = [
        Detections(
            scores=calibration.apply(p.scores, p.class_ids),
            class_ids=p.class_ids,
            boxes=p.boxes,
            raw_scores=p.scores,
        )
        for p in preds
    ]
    metrics = _metrics(records, calibrated, labels, detection, multi_label)
    thresholds = label_thresholds(metrics.per_label)
    unit = "boxes" if detection else "images"
    evidence = {}
    for name, m in raw.per_label.items():
        n = m.num_gt
        evidence[name] = {
            "validation_instances": n,
            "map": "own" if name in own else "pooled",
            "threshold": (
                "validation"
                if n >= MIN_THRESHOLD_INSTANCES
                else f"pooled: {n} validation {unit} (a guess)"
                if n == 0
                else f"mostly pooled: {n} validation {unit} (a guess)"
            ),
        }
    ece_raw = reliability(*pooled_outcomes(raw.per_label)).ece
    ece_cal = reliability(*pooled_outcomes(metrics.per_label)).ece
    card = {
        "method": METHOD,
        "target": "P(true positive at IoU 0.5)" if detection else "P(the image has the label)",
        "fitted_on": "validation",
        "min_own_instances": min_own,
        "pooled": pooled.to_dict(),
        "labels": {name: m.to_dict() for name, m in own.items()},
        "evidence": evidence,
        "validation_ece": {"raw": _rounded(ece_raw), "calibrated_in_sample": _rounded(ece_cal)},
    }
    return CalibrationFit(card, thresholds, metrics.to_dict(), calibration)
