"""Honest evaluation: metrics (pure numpy), thresholds, bootstrap intervals and reports.

Only :mod:`.metrics`, :mod:`.curves` and :mod:`.matching` are imported here; the report
writers (matplotlib, Pillow) load on demand.
"""

from customlabels.evaluation.curves import PRCurve, ThresholdScores, best_f1_threshold
from customlabels.evaluation.metrics import (
    ClassificationMetrics,
    DetectionMetrics,
    LabelMatches,
    LabelMetrics,
    classification_metrics,
    detection_metrics,
)

__all__ = [
    "ClassificationMetrics",
    "DetectionMetrics",
    "LabelMatches",
    "LabelMetrics",
    "PRCurve",
    "ThresholdScores",
    "best_f1_threshold",
    "classification_metrics",
    "detection_metrics",
]
