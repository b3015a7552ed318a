"""TrainConfig: YAML round trip and validation errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from customlabels.errors import ConfigError
from customlabels.training.config import TrainConfig, load_config, save_config


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = TrainConfig.from_dict({"optim": {"steps": 7, "lr": 0.01}, "input": {"crop": 256}})
    save_config(config, tmp_path / "config.yaml")
    loaded, raw = load_config(tmp_path / "config.yaml")
    assert loaded == config
    assert raw["optim"]["steps"] == 7


def test_partial_config_keeps_defaults(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("augment:\n  hflip: 0.0\n")
    config, raw = load_config(tmp_path / "c.yaml")
    assert config.augment.hflip == 0.0
    assert config.optim == TrainConfig().optim
    assert raw == {"augment": {"hflip": 0.0}}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"optim": {"lr": "fast"}}, "optim.lr"),
        ({"optim": {"lr": 5}}, "optim.lr"),
        ({"optim": {"steps": 0}}, "optim.steps"),
        ({"optim": {"batch_size": True}}, "optim.batch_size"),
        ({"input": {"width": 100}}, "input.width"),
        ({"input": {"crop": 32}}, "input.crop"),
        ({"model": {"backbone": 3}}, "model.backbone"),
        ({"model": {"fpn_channels": 48}}, "model.fpn_channels"),
        ({"model": {"finetune_stages": 3}}, "model.finetune_stages"),
        ({"input": {"view_window": 500}}, "input.view_window"),
        ({"augment": {"hflip": 1.5}}, "augment.hflip"),
        ({"augment": {"scale_min": 2.0, "scale_max": 1.0}}, "augment.scale_min"),
        ({"eval": {"nms_iou": 0}}, "eval.nms_iou"),
        ({"device": "tpu"}, "device"),
        ({"task": "segmentation"}, "task"),
        ({"optim": {"learning_rate": 0.1}}, "optim.learning_rate"),
        ({"optim": [1, 2]}, "optim"),
        ({"colour": 1}, "colour"),
    ],
)
def test_invalid_fields_are_named(data: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(data, source="my.yaml")
    assert field in info.value.message
    assert info.value.message.startswith("my.yaml")


def test_bad_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_unknown_backbone_is_a_config_error() -> None:
    from customlabels.training.backbone import create_backbone

    with pytest.raises(ConfigError, match=r"model\.backbone"):
        create_backbone("resnet-9000")
