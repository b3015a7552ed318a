"""TrainConfig: YAML round trip and validation errors that name the field."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from customlabels.errors import ConfigError
from customlabels.training.config import (
    Device,
    TaskChoice,
    TrainConfig,
    load_config,
    save_config,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


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
        ({"augment": {"scale_min": 2.0, "scale_max": 1.0}}, "augment.scale_max"),
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


def test_every_field_at_fault_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"threads": -1, "optim": {"batch_size": 0}}, source="my.yaml")
    assert info.value.message == (
        "my.yaml: threads: expected ≥ 0, got -1; optim.batch_size: expected ≥ 1, got 0"
    )


def test_enums_are_read_and_written_by_name(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("task: detection\ndevice: cpu\ntime_budget_s: 60\n")
    config, _ = load_config(tmp_path / "c.yaml")
    assert config.task is TaskChoice.DETECTION and config.device is Device.CPU
    assert config.time_budget_s == 60.0 and isinstance(config.time_budget_s, float)
    save_config(config, tmp_path / "out.yaml")
    written = yaml.safe_load((tmp_path / "out.yaml").read_text())
    assert written["task"] == "detection" and written["device"] == "cpu"


def test_a_config_is_frozen_and_resolved_into_validated_copies() -> None:
    config = TrainConfig()
    with pytest.raises(ValidationError, match="frozen"):
        config.optim.steps = 5  # type: ignore[misc]
    planned = config.resolved({"optim.steps": 120, "task": "detection"})
    assert planned.optim.steps == 120 and planned.task is TaskChoice.DETECTION
    assert config.optim.steps is None and config.task is TaskChoice.AUTO
    assert planned.augment == config.augment
    with pytest.raises(ConfigError, match=r"^arguments: optim\.steps: expected ≥ 1, got 0$"):
        config.resolved({"optim.steps": 0}, source="arguments")
    with pytest.raises(KeyError, match=r"optim\.step'"):
        config.resolved({"optim.step": 1})


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_load(path: Path) -> None:
    config, raw = load_config(path)
    assert raw, "an example sets some field"
    for section, fields in raw.items():
        if isinstance(fields, dict):
            for name, value in fields.items():
                assert getattr(getattr(config, section), name) == value
        else:
            assert getattr(config, section) == fields


def test_one_default_budget_for_the_cli_the_service_and_the_console() -> None:
    from customlabels.core.durations import DEFAULT_TIME_BUDGET_S
    from customlabels.service.settings import ServiceSettings

    assert TrainConfig().time_budget_s == DEFAULT_TIME_BUDGET_S == 1800.0
    assert ServiceSettings().train_time_budget_s == DEFAULT_TIME_BUDGET_S


def _documented_defaults() -> list[tuple[str, str]]:
    """``(field, default)`` from the knob table of docs/training.md: a row names one or more
    fields (``optim.batch_size``, ``lr``, … share the first one's section; ``scale_min/max`` is
    ``scale_min`` and ``scale_max``) and one default for all of them or one each."""
    text = (EXAMPLES.parent / "docs" / "training.md").read_text()
    table = text.split("## Config knobs", 1)[1].split("\n## ", 1)[0]
    pairs = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue  # header or rule
        names = [n.strip(" `") for n in cells[0].split(",")]
        if len(names) == 1 and "/" in names[0]:
            first, other = names[0].split("/")
            names = [first, f"{first.rpartition('_')[0]}_{other}"]
        section = names[0].rpartition(".")[0]
        names = [n if "." in n or not section else f"{section}.{n}" for n in names]
        values = [v.strip() for v in cells[1].split(",")]
        if len(values) == 1:
            values *= len(names)
        assert len(values) == len(names), line
        pairs += zip(names, values, strict=True)
    return pairs


def _as_documented(value: object, documented: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, int | float):
        return documented if float(documented) == value else str(value)
    return str(value)


def _field_paths(section: BaseModel, prefix: str = "") -> list[str]:
    paths = []
    for name in type(section).model_fields:
        value = getattr(section, name)
        if isinstance(value, BaseModel):
            paths += _field_paths(value, f"{prefix}{name}.")
        else:
            paths.append(prefix + name)
    return paths


def test_the_docs_state_every_field_and_its_default() -> None:
    pairs = _documented_defaults()
    defaults = TrainConfig()
    assert sorted(name for name, _ in pairs) == sorted(_field_paths(defaults))
    for name, documented in pairs:
        value: object = defaults
        for part in name.split("."):
            value = getattr(value, part)
        if documented != "auto":  # auto: recipe.auto_config chooses it from the data
            assert _as_documented(value, documented) == documented, (name, value)
