"""The backbone registry and the config's choice of backbone."""

from __future__ import annotations

import pytest

from customlabels.errors import ConfigError
from customlabels.training.backbone import BACKBONES, create_backbone
from customlabels.training.config import BackboneName, TrainConfig


def test_registry_has_every_config_choice() -> None:
    assert set(BACKBONES) == set(BackboneName)


@pytest.mark.parametrize("name", list(BackboneName))
def test_config_accepts_each_backbone(name: BackboneName) -> None:
    cfg = TrainConfig.from_dict({"model": {"backbone": name.value}})
    assert cfg.model.backbone is name
    assert TrainConfig.from_dict(cfg.to_dict()).model.backbone is name


def test_config_refuses_an_unknown_backbone() -> None:
    with pytest.raises(ConfigError, match=r"model\.backbone: expected one of .*mobilenetv2-ssd"):
        TrainConfig.from_dict({"model": {"backbone": "resnet50"}}, source="my.yaml")


def test_unknown_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="expected one of"):
        create_backbone("resnet50")
