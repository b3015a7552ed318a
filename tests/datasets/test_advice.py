"""Data advice: per-label evidence (images, boxes, independent scenes, validation and test)
and plain sentences with a number and an action."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from customlabels.core.dataset import ImageRecord
from customlabels.datasets.advice import (
    MIN_GROUPS,
    MIN_VALIDATION_IMAGES,
    DataAdvice,
    advise_dataset,
    data_advice,
    validation_fraction,
    with_test,
)
from customlabels.formats.groundtruth import load_ground_truth

SENTENCE = re.compile(r"^[\w-]+: .*\d.* — .*; (add|aim) .*\.$")


def _rec(label: int, n_boxes: int = 1) -> ImageRecord:
    return ImageRecord(
        "x.jpg", (100, 100), boxes=[[10, 10, 50, 50]] * n_boxes, box_labels=[label] * n_boxes
    )


def _advice_for(advice: DataAdvice, label: str) -> list[str]:
    return [a for a in advice.advice if a.startswith(f"{label}:")]


def test_bee_crops_drones_come_from_one_scene(bee_crops_manifest: Path) -> None:
    dataset = load_ground_truth(bee_crops_manifest)
    advice = advise_dataset(dataset)
    drone = next(e for e in advice.labels if e.label == "drone")
    assert drone.train_groups == 1 and drone.validation_instances == 0
    said = _advice_for(advice, "drone")
    assert any(
        f"all {drone.train_images} training images come from 1 scene" in a
        and f"add images from at least {MIN_GROUPS - 1} other scenes" in a
        for a in said
    ), said
    assert any("0 validation images" in a and "pooled" in a for a in said), said
    assert all(SENTENCE.match(a) for a in advice.advice), advice.advice
    bee = next(e for e in advice.labels if e.label == "bee")
    assert not _advice_for(advice, "bee") and bee.groups >= MIN_GROUPS
    assert "drone" in advice.format_table()


def test_a_label_in_one_image_cannot_be_learnt_and_tested() -> None:
    records = [_rec(0) for _ in range(40)] + [_rec(1)]
    groups = np.arange(len(records))
    advice = data_advice(["bee", "queen"], {"all": records}, groups)
    assert _advice_for(advice, "queen") == [
        "queen: only 1 image — it cannot be both learnt and tested; add at least 9 more "
        "images of queen, from different scenes."
    ]
    assert not _advice_for(advice, "bee")


def test_a_label_missing_from_validation_falls_back_visibly() -> None:
    splits = {
        "train": [_rec(0) for _ in range(30)] + [_rec(1) for _ in range(12)],
        "validation": [_rec(0, 12) for _ in range(5)],
        "test": [_rec(0, 5) for _ in range(5)] + [_rec(1) for _ in range(3)],
    }
    groups = np.arange(sum(len(v) for v in splits.values()))
    advice = data_advice(["bee", "queen"], splits, groups)
    queen = next(e for e in advice.labels if e.label == "queen")
    assert (queen.validation_instances, queen.test_instances) == (0, 3)
    said = _advice_for(advice, "queen")
    assert (
        "queen: 0 validation boxes — its threshold and confidence calibration are the pooled "
        "ones of all labels, a guess; add images of queen so that validation holds at least "
        "10 boxes." in said
    )
    assert any("3 test boxes" in a for a in said)
    assert all(SENTENCE.match(a) for a in advice.advice), advice.advice


def test_evaluation_advice_keeps_training_counts_and_takes_the_test_ones() -> None:
    before = data_advice(
        ["bee"], {"train": [_rec(0)] * 20, "validation": [_rec(0)] * 12}, np.arange(32)
    )
    after = with_test(before, ["bee"], [_rec(0)] * 4, np.zeros(4, dtype=np.int64), True)
    e = after.labels[0]
    assert (e.validation_instances, e.test_instances, e.test_groups) == (12, 4, 1)
    assert any("all 4 test images come from 1 scene" in a for a in after.advice), after.advice
    assert DataAdvice.from_dict(after.to_dict()) == after


@pytest.mark.parametrize(
    ("configured", "n", "test_given", "expected"),
    [
        (0.15, 1000, False, 0.15),  # test carved from the manifest: as configured
        (0.15, 1000, True, 0.25),  # separate test set: validation grows
        (0.30, 1000, True, 0.30),  # a bigger configured share stays
        (0.15, 100, False, MIN_VALIDATION_IMAGES / 100),  # at least 30 images
        (0.15, 30, False, 1 / 3),  # ... at most a third of a small set
    ],
)
def test_validation_size_rules(
    configured: float, n: int, test_given: bool, expected: float
) -> None:
    assert validation_fraction(configured, n, test_given) == pytest.approx(expected)
