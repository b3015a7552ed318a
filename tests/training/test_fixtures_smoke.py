"""The session fixtures other areas rely on produce complete, loadable model folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customlabels.core.model_card import ModelCard


@pytest.mark.parametrize(
    ("fixture", "task"),
    [("tiny_detector_dir", "OBJECT_LOCALIZATION"), ("tiny_classifier_dir", "IMAGE_LEVEL_LABELS")],
)
def test_tiny_model_folder_is_complete(
    request: pytest.FixtureRequest, fixture: str, task: str
) -> None:
    folder: Path = request.getfixturevalue(fixture)
    for name in (
        "model.onnx",
        "model.json",
        "config.yaml",
        "train.log",
        "metrics.csv",
        "training_curves.png",
        "checkpoints/last.pt",
    ):
        assert (folder / name).is_file(), name
    card = ModelCard.load(folder)
    assert card.task.value == task
    assert set(card.thresholds) == set(card.labels)
    assert all(0.0 <= t <= 1.0 for t in card.thresholds.values())
    assert card.training["steps"] > 0
    assert json.loads((folder / "model.json").read_text())["recipe"]["optim"]["steps"] > 0
