"""Is a confidence of 0.8 right 80 % of the time? Reliability bins and the expected
calibration error (ECE), pure numpy.

A prediction counts as correct when it is a true positive at IoU 0.5 (detection: the greedy
matching of :mod:`.matching`, so a second box on an already found object is wrong) or when the
image carries the label (classification). Every prediction the model returned is counted
(detectors: every box the decoder kept, at any confidence), in ``BINS`` equal-width bins of
confidence; ``ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b|`` (0: calibrated; 0–1).
Confidences are 0–1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.evaluation.metrics import LabelMetrics

__all__ = ["BINS", "Reliability", "pooled_outcomes", "reliability"]

BINS = 10


@dataclass(frozen=True)
class Reliability:
    """Reliability of a set of confidences.

    Attributes:
        edges: ``(B + 1,)`` bin edges over 0–1.
        counts: ``(B,)`` predictions per bin.
        confidence: ``(B,)`` mean confidence per bin (``nan`` when empty).
        accuracy: ``(B,)`` share of correct predictions per bin (``nan`` when empty).
        ece: expected calibration error, 0–1 (``nan`` without predictions).
        n: number of predictions.
    """

    edges: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]
    confidence: npt.NDArray[np.float64]
    accuracy: npt.NDArray[np.float64]
    ece: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        def clean(values: npt.NDArray[np.float64]) -> list[float | None]:
            return [None if math.isnan(v) else round(float(v), 6) for v in values]

        return {
            "ECE": None if math.isnan(self.ece) else round(self.ece, 6),
            "Predictions": self.n,
            "Bins": {
                "Edges": [round(float(e), 6) for e in self.edges],
                "Count": [int(c) for c in self.counts],
                "MeanConfidence": clean(self.confidence),
                "Accuracy": clean(self.accuracy),
            },
        }


def reliability(
    confidences: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_], bins: int = BINS
) -> Reliability:
    """Bin ``confidences`` (0–1) with their outcomes ``correct`` and compute the ECE."""
    conf = np.asarray(confidences, dtype=np.float64).reshape(-1)
    ok = np.asarray(correct, dtype=bool).reshape(-1)
    if len(conf) != len(ok):
        raise ValueError(f"expected one outcome per confidence, got {len(ok)} and {len(conf)}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    counts = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=bins) / counts
        accuracy = np.bincount(idx, weights=ok.astype(float), minlength=bins) / counts
    n = len(conf)
    if n == 0:
        ece = math.nan
    else:
        gap = np.where(counts > 0, np.abs(accuracy - mean_conf), 0.0)
        ece = float(np.sum(counts / n * gap))
    return Reliability(edges, counts.astype(np.int64), mean_conf, accuracy, ece, n)


def pooled_outcomes(
    per_label: dict[str, LabelMetrics],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Every label's predictions together: ``(confidences, correct at IoU 0.5)``."""
    matches = [m.matches for m in per_label.values()]
    if not matches:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return (
        np.concatenate([m.scores for m in matches]),
        np.concatenate([m.is_tp[0] for m in matches]),
    )
