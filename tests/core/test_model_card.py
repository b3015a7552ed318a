"""model.json round trip and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customlabels.core.dataset import Task
from customlabels.core.model_card import InputSpec, ModelCard
from customlabels.errors import InvalidParameterError


def test_round_trip(tmp_path: Path) -> None:
    card = ModelCard(
        task=Task.OBJECT_LOCALIZATION,
        labels=["bee", "drone"],
        input=InputSpec(width=960, height=544),
        thresholds={"bee": 0.41},
    )
    card.save(tmp_path)
    back = ModelCard.load(tmp_path)
    assert back.to_dict() == card.to_dict()
    assert back.threshold_for("bee") == pytest.approx(0.41)


def test_missing_folder_and_bad_card(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="not a model folder"):
        ModelCard.load(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"task": "NOPE", "labels": []}))
    with pytest.raises(InvalidParameterError, match="not a valid model card"):
        ModelCard.load(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(InvalidParameterError, match="newer"):
        ModelCard.load(tmp_path)
