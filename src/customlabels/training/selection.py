"""Model selection on the validation split: the score that picks the checkpoint, the assumed
threshold of each label, and the NMS IoU and sliced inference chosen after training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from customlabels.core.model_card import TilingSpec
from customlabels.evaluation.curves import best_f1_threshold
from customlabels.evaluation.reliability import pooled_outcomes

__all__ = [
    "DEFAULT_NMS_IOU",
    "NMS_CANDIDATES",
    "NMS_MARGIN",
    "THRESHOLD_PRIOR",
    "TILING_CANDIDATES",
    "TILING_MARGIN",
    "Evaluation",
    "choose_nms_iou",
    "choose_tiling",
    "label_thresholds",
    "selection_score",
]

# NMS IoU during training's validations, and the values tried after it (``eval.nms_iou: null``).
DEFAULT_NMS_IOU = 0.6
NMS_CANDIDATES = (0.4, 0.5, 0.6, 0.7)
NMS_MARGIN = 0.002
# Sliced inference tried after the NMS choice (``eval.tiling: true``): a 2×2 grid whose tiles
# magnify the frame 1.5× or 2× over its served scale (2×: a 16-px object on the served input is
# 32 px on a tile's). Kept only when it beats the whole frame alone by TILING_MARGIN: it costs
# about 1 + 1.2·scale² whole-frame runs (bench/results/tiling.md).
TILING_CANDIDATES = (TilingSpec((2, 2), 0.2, 1.5), TilingSpec((2, 2), 0.2, 2.0))
TILING_MARGIN = 0.01
# Validation instances a label's own best-F1 threshold counts as, against the pooled one.
THRESHOLD_PRIOR = 10.0


@dataclass
class Evaluation:
    """Validation result: ``score`` drives model selection (higher is better)."""

    score: float
    summary: dict[str, Any]
    thresholds: dict[str, float] = field(default_factory=dict)


def selection_score(per_label: dict[str, Any], key: str = "ap50") -> float:
    """Mean of a per-label metric weighted by each label's ground-truth count.

    A plain mean over labels lets a label with two validation boxes swing the choice of
    checkpoint; weighting by instances keeps the choice stable (labels without GT count 0).
    """
    total = sum(m.num_gt for m in per_label.values())
    if total == 0:
        return 0.0
    return float(
        sum(
            m.num_gt * (0.0 if np.isnan(getattr(m, key)) else getattr(m, key))
            for m in per_label.values()
        )
        / total
    )


def choose_nms_iou(scores: dict[float, float]) -> float:
    """The NMS IoU with the best validation score; :data:`DEFAULT_NMS_IOU` unless another
    beats it by :data:`NMS_MARGIN` (``scores`` must hold the default)."""
    best = max(scores, key=lambda iou: scores[iou])
    return best if scores[best] >= scores[DEFAULT_NMS_IOU] + NMS_MARGIN else DEFAULT_NMS_IOU


def choose_tiling(off: float, scores: dict[TilingSpec, float]) -> TilingSpec | None:
    """The tiling with the best validation score if it beats ``off`` (the whole frame alone)
    by :data:`TILING_MARGIN`, else ``None`` (off)."""
    if not scores:
        return None
    best = max(scores, key=lambda t: scores[t])
    return best if scores[best] >= off + TILING_MARGIN else None


def label_thresholds(per_label: dict[str, Any], prior: float = THRESHOLD_PRIOR) -> dict[str, float]:
    """Each label's assumed threshold: its best-F1 confidence on validation, shrunk towards the
    best-F1 confidence of all labels together in proportion to its evidence,
    ``(n·t_label + prior·t_all) / (n + prior)`` for ``n`` validation instances.

    A label seen three times in validation gets a threshold from three scores (noise: on the
    bee-crops classifier, bee's own 0.77 held out worse than the shrunk 0.70); a label never
    seen gets ``t_all``. ``prior = 0``: the labels' own thresholds, 0.5 for unseen labels.
    """
    scores, correct = pooled_outcomes(per_label)
    pooled = best_f1_threshold(scores, correct, sum(m.num_gt for m in per_label.values())).threshold
    if prior <= 0 or not np.isfinite(pooled):
        pooled = 0.5
    out = {}
    for name, m in per_label.items():
        t, n = m.best.threshold, m.num_gt
        own = n > 0 and np.isfinite(t)
        out[name] = float((n * t + prior * pooled) / (n + prior) if own else pooled)
    return out
