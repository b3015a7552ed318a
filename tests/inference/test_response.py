"""The DetectCustomLabels rendering: units, order, thresholds, limits."""

from __future__ import annotations

import numpy as np
import pytest

from customlabels.core.detections import Detections
from customlabels.errors import InvalidParameterError
from customlabels.inference.response import to_custom_labels

LABELS = ["bee", "queen"]


def _dets() -> Detections:
    return Detections(
        scores=np.array([0.30, 0.95, 0.60]),
        class_ids=np.array([0, 1, 0]),
        boxes=np.array([[0, 0, 10, 10], [50, 25, 100, 75], [10, 20, 30, 60]], dtype=float),
    )


def test_shape_units_and_order() -> None:
    out = to_custom_labels(_dets(), LABELS, (200, 100), thresholds={}, min_confidence=0)
    assert [o["Name"] for o in out] == ["queen", "bee", "bee"]
    assert out[0]["Confidence"] == pytest.approx(95.0)
    assert out[0]["Geometry"]["BoundingBox"] == {
        "Width": 0.25,
        "Height": 0.5,
        "Left": 0.25,
        "Top": 0.25,
    }


def test_min_confidence_is_0_to_100() -> None:
    out = to_custom_labels(_dets(), LABELS, (200, 100), thresholds={}, min_confidence=50)
    assert [o["Confidence"] for o in out] == [95.0, 60.0]


def test_per_label_thresholds_apply_without_min_confidence() -> None:
    out = to_custom_labels(_dets(), LABELS, (200, 100), thresholds={"bee": 0.25, "queen": 0.99})
    assert [(o["Name"], o["Confidence"]) for o in out] == [("bee", 60.0), ("bee", 30.0)]


def test_max_results_and_classifier_has_no_geometry() -> None:
    dets = Detections(scores=np.array([0.2, 0.8]), class_ids=np.array([0, 1]), boxes=None)
    out = to_custom_labels(dets, LABELS, (64, 64), thresholds={}, min_confidence=0, max_results=1)
    assert out == [{"Name": "queen", "Confidence": 80.0}]


@pytest.mark.parametrize(
    ("min_confidence", "max_results", "match"),
    [(101, None, "MinConfidence"), (-1, None, "MinConfidence"), (None, -2, "MaxResults")],
)
def test_bad_parameters(min_confidence: float | None, max_results: int | None, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        to_custom_labels(_dets(), LABELS, (10, 10), {}, min_confidence, max_results)


def test_boxes_are_clipped_and_empty_ones_dropped() -> None:
    dets = Detections(
        scores=np.array([0.9, 0.8]),
        class_ids=np.array([0, 0]),
        boxes=np.array([[-10, -10, 50, 50], [300, 0, 320, 10]], dtype=float),
    )
    out = to_custom_labels(dets, LABELS, (200, 100), thresholds={}, min_confidence=0)
    assert len(out) == 1
    assert out[0]["Geometry"]["BoundingBox"] == {
        "Width": 0.25,
        "Height": 0.5,
        "Left": 0.0,
        "Top": 0.0,
    }
