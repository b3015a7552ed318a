"""What happened on each test image at the assumed thresholds: true positives, false
positives and misses, for the evaluation manifest and the report's gallery.

Uses the same matching as the metrics (greedy by confidence, IoU ≥ 0.5, per label), so the
counts here add up to the per-label counts of :func:`~.metrics.detection_metrics`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.errors import InvalidParameterError
from customlabels.evaluation.matching import assign_boxes
from customlabels.evaluation.metrics import kept_labels, score_matrix

__all__ = ["ImageOutcome", "Kind", "Outcome", "image_outcomes"]


class Kind(enum.StrEnum):
    TRUE_POSITIVE = "tp"
    FALSE_POSITIVE = "fp"
    FALSE_NEGATIVE = "fn"


@dataclass(frozen=True)
class Outcome:
    """One drawn item: a kept prediction (TP/FP) or a missed ground-truth instance (FN).

    Attributes:
        label: label id.
        kind: TP, FP or FN.
        score: confidence 0–1 (``None`` for a miss).
        box: ``(x1, y1, x2, y2)`` pixels, ``None`` for a classifier.
        gt_index: the matched (TP) or missed (FN) ground-truth box index in the record, else -1.
    """

    label: int
    kind: Kind
    score: float | None
    box: tuple[float, float, float, float] | None
    gt_index: int = -1


@dataclass
class ImageOutcome:
    """Outcomes of one image (``index`` into the evaluated images)."""

    index: int
    items: list[Outcome] = field(default_factory=list)

    def count(self, kind: Kind) -> int:
        return sum(1 for o in self.items if o.kind == kind)

    @property
    def errors(self) -> int:
        """False positives plus misses: the gallery shows the images with most errors first."""
        return self.count(Kind.FALSE_POSITIVE) + self.count(Kind.FALSE_NEGATIVE)


def _box(row: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in row)
    return (x1, y1, x2, y2)


def _detection_outcome(
    index: int, gt: ImageRecord, pred: Detections, thresholds: np.ndarray
) -> ImageOutcome:
    out = ImageOutcome(index)
    if pred.boxes is None:
        raise InvalidParameterError(f"predictions for {gt.ref}: expected boxes, got None")
    keep = pred.scores >= thresholds[pred.class_ids] if len(pred) else np.zeros(0, bool)
    kept = pred[keep].sorted()
    kept_boxes = kept.boxes if kept.boxes is not None else np.zeros((0, 4))
    for c in sorted(set(kept.class_ids.tolist()) | set(gt.box_labels.tolist())):
        pm = np.flatnonzero(kept.class_ids == c)
        gm = np.flatnonzero(gt.box_labels == c)
        assigned = assign_boxes(kept_boxes[pm], gt.boxes[gm], np.array([0.5]))[0]
        for d, g in zip(pm.tolist(), assigned.tolist(), strict=True):
            kind = Kind.TRUE_POSITIVE if g >= 0 else Kind.FALSE_POSITIVE
            gt_index = int(gm[g]) if g >= 0 else -1
            out.items.append(Outcome(c, kind, float(kept.scores[d]), _box(kept_boxes[d]), gt_index))
        for g in sorted(set(range(len(gm))) - set(assigned.tolist())):
            miss = int(gm[g])
            out.items.append(Outcome(c, Kind.FALSE_NEGATIVE, None, _box(gt.boxes[miss]), miss))
    return out


def image_outcomes(
    gts: Sequence[ImageRecord],
    preds: Sequence[Detections],
    labels: list[str],
    thresholds: dict[str, float],
    detection: bool,
    multi_label: bool = False,
) -> list[ImageOutcome]:
    """Per-image outcomes at ``thresholds`` (0–1, one per label; missing labels use 0.5).

    Args:
        detection: boxes (matched at IoU ≥ 0.5) or image-level labels (every label reaching
            its threshold, as ``detect`` returns them, is a TP when the image has it, else an
            FP; a ground-truth label not returned is an FN).
        multi_label: unused for image-level labels (kept for symmetry with the metrics).
    """
    thr = np.array([thresholds.get(name, 0.5) for name in labels], dtype=np.float64)
    if detection:
        return [
            _detection_outcome(i, gt, pred, thr)
            for i, (gt, pred) in enumerate(zip(gts, preds, strict=True))
        ]
    scores = score_matrix(preds, len(labels))
    # every label detect would return, so the outcomes add up to the per-label counts
    kept = kept_labels(scores, thr, multi_label=True)
    outcomes = []
    for i, gt in enumerate(gts):
        out = ImageOutcome(i)
        truth = set(gt.image_labels)
        for c in np.flatnonzero(kept[i]).tolist():
            kind = Kind.TRUE_POSITIVE if c in truth else Kind.FALSE_POSITIVE
            out.items.append(Outcome(c, kind, float(scores[i, c]), None))
        for c in sorted(truth - set(np.flatnonzero(kept[i]).tolist())):
            score = None if np.isnan(scores[i, c]) else float(scores[i, c])
            out.items.append(Outcome(c, Kind.FALSE_NEGATIVE, score, None))
        outcomes.append(out)
    return outcomes
