"""model.json round trip and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customlabels.core.dataset import Task
from customlabels.core.model_card import InputSpec, ModelCard, TilingSpec
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


def test_tiling_round_trip_and_old_cards(tmp_path: Path) -> None:
    card = ModelCard(
        task=Task.OBJECT_LOCALIZATION,
        labels=["bee"],
        input=InputSpec(width=1280, height=736),
        tiling=TilingSpec((2, 2), 0.2, 2.0),
    )
    card.save(tmp_path)
    assert json.loads((tmp_path / "model.json").read_text())["tiling"] == {
        "grid": [2, 2],
        "overlap": 0.2,
        "scale": 2.0,
    }
    assert ModelCard.load(tmp_path).tiling == TilingSpec((2, 2), 0.2, 2.0)
    # A card written before the field existed (or with it null) serves without tiling.
    data = json.loads((tmp_path / "model.json").read_text())
    del data["tiling"]
    (tmp_path / "model.json").write_text(json.dumps(data))
    assert ModelCard.load(tmp_path).tiling is None


@pytest.mark.parametrize(
    ("tiling", "field"),
    [
        ({"grid": [0, 2], "overlap": 0.2, "scale": 2}, "tiling.grid"),
        ({"grid": [2, 2], "overlap": 0.6, "scale": 2}, "tiling.overlap"),
        ({"grid": [2, 2], "overlap": 0.2, "scale": 0.5}, "tiling.scale"),
        ({"grid": [2], "overlap": 0.2, "scale": 2}, "tiling: expected"),
        ({"overlap": 0.2}, "tiling: expected"),
    ],
)
def test_bad_tiling_is_refused(tmp_path: Path, tiling: dict, field: str) -> None:
    data = {"task": "OBJECT_LOCALIZATION", "labels": ["bee"], "input": {"width": 64, "height": 64}}
    (tmp_path / "model.json").write_text(json.dumps({**data, "tiling": tiling}))
    with pytest.raises(InvalidParameterError, match=field):
        ModelCard.load(tmp_path)
