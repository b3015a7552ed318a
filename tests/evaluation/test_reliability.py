"""Reliability bins and the expected calibration error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from customlabels.evaluation.reliability import reliability


@pytest.mark.parametrize(
    ("conf", "correct", "ece"),
    [
        ([0.95] * 10, [True] * 9 + [False], 0.05),  # 90 % right at 0.95
        ([0.25, 0.25, 0.25, 0.25], [True, False, False, False], 0.0),
        ([0.05, 0.95], [True, False], 0.95),  # two bins, each wrong by 0.95
        ([1.0], [True], 0.0),  # 1.0 falls in the last bin
    ],
)
def test_ece_of_known_cases(conf: list[float], correct: list[bool], ece: float) -> None:
    r = reliability(np.array(conf), np.array(correct))
    assert r.ece == pytest.approx(ece)
    assert r.counts.sum() == r.n == len(conf)


def test_calibrated_samples_have_a_small_ece_and_shifted_ones_a_large_one() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    ok = rng.random(20000) < p
    assert reliability(p, ok).ece < 0.02
    assert reliability(p * 0.5, ok).ece > 0.2  # a model whose scores top out near 0.5


def test_no_predictions_is_undefined_not_zero() -> None:
    r = reliability(np.zeros(0), np.zeros(0, dtype=bool))
    assert math.isnan(r.ece) and r.to_dict()["ECE"] is None
