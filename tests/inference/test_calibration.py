"""Applying calibration at serving time (numpy only): maps, the card, the response."""

from __future__ import annotations

import numpy as np
import pytest

from customlabels.core.detections import Detections
from customlabels.errors import InvalidParameterError
from customlabels.inference.calibration import TIE_BREAK, Calibration, ScoreMap
from customlabels.inference.response import to_custom_labels

MAP = ScoreMap((0.1, 0.3, 0.5), (0.05, 0.6, 0.95))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0.1, 0.05),
        (0.2, 0.325),  # linear between knots
        (0.5, 0.95),
        (0.0, 0.05),  # held below the first knot
        (0.9, 0.95),  # held above the last knot (no extrapolation to certainty)
    ],
)
def test_score_map_interpolates_and_holds_the_ends(raw: float, expected: float) -> None:
    assert MAP(np.array([raw]))[0] == pytest.approx(expected + TIE_BREAK * raw, abs=1e-12)


def test_score_map_keeps_the_raw_ranking_everywhere() -> None:
    raw = np.linspace(0, 1, 1001)
    assert np.all(np.diff(MAP(raw)) > 0)


@pytest.mark.parametrize(
    ("raw", "calibrated", "message"),
    [
        ((0.1, 0.1), (0.2, 0.3), "increasing"),
        ((0.1, 0.2), (0.3, 0.2), "increasing"),
        ((0.1,), (1.5,), "0–1"),
        ((), (), "≥ 1"),
    ],
)
def test_score_map_refuses_bad_knots(raw: tuple, calibrated: tuple, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        ScoreMap(raw, calibrated)


def test_labels_use_their_own_map_or_the_pooled_one() -> None:
    own = ScoreMap((0.1, 0.5), (0.2, 0.9))
    cal = Calibration.from_card(
        ["bee", "queen"], {"pooled": MAP.to_dict(), "labels": {"bee": own.to_dict()}}
    )
    scores, ids = np.array([0.5, 0.5]), np.array([0, 1])
    np.testing.assert_allclose(cal.apply(scores, ids), [own(scores)[0], MAP(scores)[1]])


def test_a_card_without_calibration_keeps_raw_scores() -> None:
    cal = Calibration.from_card(["bee"], {})
    assert cal.identity
    np.testing.assert_array_equal(cal.apply(np.array([0.3]), np.array([0])), [0.3])


def test_the_response_carries_the_raw_confidence_only_when_asked() -> None:
    dets = Detections(
        np.array([0.9]), np.array([0]), np.array([[0, 0, 10, 10.0]]), raw_scores=np.array([0.45])
    )
    plain = to_custom_labels(dets, ["bee"], (20, 20), {"bee": 0.5})
    expert = to_custom_labels(dets, ["bee"], (20, 20), {"bee": 0.5}, raw=True)
    assert plain[0]["Confidence"] == 90.0 and "RawConfidence" not in plain[0]
    assert expert[0]["RawConfidence"] == 45.0
    # thresholds apply to the calibrated confidence: the raw 0.45 would not pass 0.5
    assert len(plain) == 1
