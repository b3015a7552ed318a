"""Calibrated confidence: the map from a model's raw score to P(true positive), numpy only.

Training fits it on the validation split (:mod:`customlabels.training.calibrate`) and stores it
in ``model.json`` ``calibration``; :class:`~customlabels.inference.predictor.Predictor` applies
it to every score it returns, so ``detect``, the API, the pipeline and ``evaluate`` all see the
calibrated confidence, and the card's thresholds are on the same scale.

A map is a list of knots ``(raw, calibrated)`` with both coordinates strictly increasing
(the blocks of an isotonic fit); between knots it interpolates linearly, outside them it
holds the end value. ``TIE_BREAK × raw`` is added so that the map is strictly increasing
everywhere: the ranking of a label's detections (hence NMS, AP and PR curves) is exactly the
raw one. All values are 0–1 (the API shows them × 100).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.errors import InvalidParameterError

__all__ = ["TIE_BREAK", "Calibration", "ScoreMap"]

FloatArray = npt.NDArray[np.float64]

#: Added × raw score so that the map is strictly increasing (no ties created at the ends).
TIE_BREAK = 1e-6


@dataclass(frozen=True)
class ScoreMap:
    """A monotone piecewise-linear map raw score (0–1) -> calibrated confidence (0–1).

    Attributes:
        raw: knots' raw scores, strictly increasing.
        calibrated: knots' calibrated confidences, non-decreasing, in 0–1.
    """

    raw: tuple[float, ...]
    calibrated: tuple[float, ...]

    def __post_init__(self) -> None:
        r, c = np.asarray(self.raw, float), np.asarray(self.calibrated, float)
        if len(r) == 0 or len(r) != len(c):
            raise InvalidParameterError(
                f"calibration map: expected as many raw as calibrated knots (≥ 1), got "
                f"{len(r)} and {len(c)}"
            )
        if np.any(np.diff(r) <= 0) or np.any(np.diff(c) < 0):
            raise InvalidParameterError("calibration map: expected increasing knots")
        if c.min() < 0 or c.max() > 1:
            raise InvalidParameterError("calibration map: calibrated values must lie in 0–1")

    def __call__(self, scores: FloatArray) -> FloatArray:
        s = np.asarray(scores, dtype=np.float64)
        out = np.interp(s, self.raw, self.calibrated) + TIE_BREAK * s
        return np.clip(out, 0.0, 1.0)

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "raw": [round(v, 6) for v in self.raw],
            "calibrated": [round(v, 6) for v in self.calibrated],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> ScoreMap:
        try:
            return cls(
                tuple(float(v) for v in data["raw"]), tuple(float(v) for v in data["calibrated"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameterError(f"calibration map: {exc!r}") from None


@dataclass(frozen=True)
class Calibration:
    """Per-label maps with a pooled fallback; the identity when a card has none.

    Attributes:
        labels: the model's labels (a class id indexes this list).
        pooled: the map fitted on every label's validation predictions together; ``None``:
            identity (a model trained before calibration existed).
        own: maps of the labels with enough validation evidence for their own.
    """

    labels: tuple[str, ...]
    pooled: ScoreMap | None = None
    own: dict[str, ScoreMap] = field(default_factory=dict)

    @property
    def identity(self) -> bool:
        return self.pooled is None and not self.own

    def map_for(self, label: str) -> ScoreMap | None:
        return self.own.get(label, self.pooled)

    def apply(self, scores: FloatArray, class_ids: npt.NDArray[np.int64]) -> FloatArray:
        """Calibrated confidences (0–1) for raw ``scores`` (0–1) of labels ``class_ids``."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.identity or len(scores) == 0:
            return scores.copy()
        out = scores.copy()
        for k, name in enumerate(self.labels):
            fn = self.map_for(name)
            sel = class_ids == k
            if fn is not None and sel.any():
                out[sel] = fn(scores[sel])
        return out

    @classmethod
    def from_card(cls, labels: Sequence[str], data: Mapping[str, Any] | None) -> Calibration:
        """Read ``model.json`` ``calibration`` (``{}`` or missing: identity)."""
        if not data:
            return cls(tuple(labels))
        pooled = data.get("pooled")
        own = data.get("labels") or {}
        return cls(
            tuple(labels),
            ScoreMap.from_dict(pooled) if pooled else None,
            {str(k): ScoreMap.from_dict(v) for k, v in own.items() if k in labels},
        )
