"""``TrainConfig``: every training knob, with its default, in one typed place.

``config.yaml`` in a model folder is ``TrainConfig.to_dict()``; ``--config FILE.yaml`` reads it
back (any subset of fields; unknown or ill-typed fields raise :class:`ConfigError` naming the
field). The automatic recipe (``recipe.py``) fills in what the user did not fix.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from customlabels.errors import ConfigError

__all__ = [
    "AugmentConfig",
    "EvalConfig",
    "InputConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "load_config",
    "save_config",
]


@dataclass
class ModelConfig:
    # Pretrained, frozen feature extractor (registry key in training/backbone.py).
    backbone: str = "efficientnet-lite0"
    # Width of the FPN and of the FCOS head (detector only).
    fpn_channels: int = 64
    # 3×3 conv + GroupNorm + ReLU layers in each FCOS head branch.
    head_convs: int = 2
    # FCOS positive sampling radius, in strides.
    center_sampling_radius: float = 1.5
    # Fine-tune the backbone's last N stages (0 = frozen; 1 = the stride-32 stage over cached
    # stride-16 maps; 2 = the stride-16 and stride-32 stages over cached stride-8 maps). The
    # classifier also fine-tunes the final 1×1 conv when N > 0. 2: clearly better for bee-crops,
    # as good on the bee frames in a third of the steps, slightly worse on BCCD
    # (bench/results/training.md).
    finetune_stages: int = 2
    # Classifier: hidden layer width on the pooled features (0 = a linear layer).
    classifier_hidden: int = 0
    # Learning rate of fine-tuned backbone blocks (detector or classifier), × optim.lr.
    tail_lr_scale: float = 0.05


@dataclass
class InputConfig:
    # The served input (model.json "input"): letterboxed to width × height (multiples of 32).
    width: int = 640
    height: int = 640
    # Detector training crops, in pixels of the (scaled) image (multiple of 32). Training on
    # crops of a high-resolution image while detecting on the whole frame.
    crop: int = 320
    # Detector views larger than this side (pixels) are cut to a window of it around a random
    # box before the backbone runs, so caching costs per window, not per up-scaled frame
    # (0 = whole views; never less than input.crop).
    view_window: int = 512


@dataclass
class AugmentConfig:
    # Augmented copies of each training image whose backbone features are computed once and
    # cached (torchvision.transforms.v2; the first copy is un-augmented at scale 1).
    views_per_image: int = 3
    # Scale jitter: each view is resized by a factor in [scale_min, scale_max] of the input scale.
    scale_min: float = 0.6
    scale_max: float = 1.6
    # Flip probabilities.
    hflip: float = 0.5
    vflip: float = 0.0
    # Colour jitter strength (brightness/contrast/saturation ± this, hue ± this/4).
    color: float = 0.25
    # Fraction of detector crops centred on a (repeat-factor sampled) box; the rest are random.
    object_crops: float = 0.7
    # A box cut by a crop is kept when at least this fraction of its area remains.
    min_visible: float = 0.4
    # Repeat-factor sampling threshold (LVIS): images with labels rarer than this fraction of
    # images are drawn more often (0 disables).
    repeat_threshold: float = 0.3


@dataclass
class OptimConfig:
    # Training steps; null = as many as the time budget allows (measured step time).
    steps: int | None = None
    batch_size: int = 8
    lr: float = 0.002
    weight_decay: float = 0.0001
    # Linear warm-up steps, then cosine decay to lr × final_lr_fraction.
    warmup_steps: int = 100
    final_lr_fraction: float = 0.02
    # Gradient-norm clipping (0 disables).
    clip_grad: float = 10.0


@dataclass
class EvalConfig:
    # Fraction of the training part carved out as validation (group-aware), never the test set.
    validation_fraction: float = 0.15
    # Automatic test split when no --test manifest is given.
    test_fraction: float = 0.2
    # Validate every this many steps (0 = about eight times per run).
    every: int = 0
    # Decoding (written to model.json "head").
    score_threshold: float = 0.05
    # Class-wise NMS IoU; null: chosen after training on validation among 0.4–0.7 (dense
    # clusters of small objects gain from a lower value, touching cells do not).
    nms_iou: float | None = None
    topk_per_level: int = 1000
    max_detections: int = 1000


@dataclass
class TrainConfig:
    """All knobs of a training run (see ``docs/training.md``)."""

    # "auto": from the dataset (boxes -> detector, image labels -> classifier).
    task: str = "auto"
    # Seconds for the whole run (caching, training, validation); used when optim.steps is null.
    time_budget_s: float = 900.0
    seed: int = 0
    # auto | cpu | cuda
    device: str = "auto"
    # CPU threads for torch (0 = the idle cores: all of them on an idle machine, 1 on a busy one).
    threads: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    input: InputConfig = field(default_factory=InputConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        config = _build(cls, data, source, "")
        validate(config, source)
        return config


def _build(kind: type, data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(kind)
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown field {prefix}{unknown[0]}; expected one of {sorted(names)}"
        )
    values: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        path = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, source, path + ".")  # type: ignore[arg-type]
        else:
            values[name] = _coerce(hint, value, source, path)
    return kind(**values)


def _coerce(hint: Any, value: Any, source: str, path: str) -> Any:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{source}: {path}: expected {_name(hint)}, got null")
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
    raise ConfigError(f"{source}: {path}: expected {_name(hint)}, got {value!r}")


def _name(hint: Any) -> str:
    return str(hint).replace("<class '", "").replace("'>", "")


_DEVICES = ("auto", "cpu", "cuda")
_TASKS = ("auto", "detection", "classification")


def validate(c: TrainConfig, source: str = "config") -> None:
    """Range checks; raises ConfigError naming the field (``expected …, got …``)."""

    def need(ok: bool, path: str, expected: str, got: Any) -> None:
        if not ok:
            raise ConfigError(f"{source}: {path}: expected {expected}, got {got!r}")

    need(c.task in _TASKS, "task", f"one of {list(_TASKS)}", c.task)
    need(c.device in _DEVICES, "device", f"one of {list(_DEVICES)}", c.device)
    need(c.time_budget_s > 0, "time_budget_s", "a number of seconds > 0", c.time_budget_s)
    need(c.threads >= 0, "threads", "an integer ≥ 0", c.threads)
    need(
        c.model.fpn_channels % 32 == 0 and c.model.fpn_channels > 0,
        "model.fpn_channels",
        "a positive multiple of 32 (GroupNorm uses 32 groups)",
        c.model.fpn_channels,
    )
    need(1 <= c.model.head_convs <= 4, "model.head_convs", "an integer in 1–4", c.model.head_convs)
    need(
        c.model.center_sampling_radius > 0,
        "model.center_sampling_radius",
        "> 0",
        c.model.center_sampling_radius,
    )
    need(
        c.model.classifier_hidden >= 0,
        "model.classifier_hidden",
        "an integer ≥ 0",
        c.model.classifier_hidden,
    )
    need(
        0 <= c.model.finetune_stages <= 2,
        "model.finetune_stages",
        "an integer in 0–2",
        c.model.finetune_stages,
    )
    need(
        0 < c.model.tail_lr_scale <= 1,
        "model.tail_lr_scale",
        "a number in (0, 1]",
        c.model.tail_lr_scale,
    )
    for name in ("width", "height", "crop"):
        value = getattr(c.input, name)
        need(value >= 64 and value % 32 == 0, f"input.{name}", "a multiple of 32 ≥ 64", value)
    need(
        c.input.view_window == 0 or (c.input.view_window % 32 == 0 and c.input.view_window >= 64),
        "input.view_window",
        "0 or a multiple of 32 ≥ 64",
        c.input.view_window,
    )
    a = c.augment
    need(a.views_per_image >= 1, "augment.views_per_image", "an integer ≥ 1", a.views_per_image)
    need(
        0 < a.scale_min <= a.scale_max <= 4,
        "augment.scale_min/scale_max",
        "0 < scale_min ≤ scale_max ≤ 4",
        (a.scale_min, a.scale_max),
    )
    for name in ("hflip", "vflip", "object_crops", "min_visible", "repeat_threshold"):
        need(0 <= getattr(a, name) <= 1, f"augment.{name}", "a number in 0–1", getattr(a, name))
    need(0 <= a.color <= 1, "augment.color", "a number in 0–1", a.color)
    o = c.optim
    need(o.steps is None or o.steps >= 1, "optim.steps", "null or an integer ≥ 1", o.steps)
    need(o.batch_size >= 1, "optim.batch_size", "an integer ≥ 1", o.batch_size)
    need(0 < o.lr < 1, "optim.lr", "a learning rate in (0, 1)", o.lr)
    need(o.weight_decay >= 0, "optim.weight_decay", "≥ 0", o.weight_decay)
    need(o.warmup_steps >= 0, "optim.warmup_steps", "an integer ≥ 0", o.warmup_steps)
    need(
        0 <= o.final_lr_fraction <= 1,
        "optim.final_lr_fraction",
        "a number in 0–1",
        o.final_lr_fraction,
    )
    need(o.clip_grad >= 0, "optim.clip_grad", "≥ 0", o.clip_grad)
    e = c.eval
    need(
        0 < e.validation_fraction < 0.9,
        "eval.validation_fraction",
        "a fraction in (0, 0.9)",
        e.validation_fraction,
    )
    need(0 < e.test_fraction < 0.9, "eval.test_fraction", "a fraction in (0, 0.9)", e.test_fraction)
    need(e.every >= 0, "eval.every", "an integer ≥ 0", e.every)
    need(
        0 <= e.score_threshold < 1, "eval.score_threshold", "a number in [0, 1)", e.score_threshold
    )
    need(
        e.nms_iou is None or 0 < e.nms_iou <= 1,
        "eval.nms_iou",
        "null or a number in (0, 1]",
        e.nms_iou,
    )
    need(e.topk_per_level >= 1, "eval.topk_per_level", "an integer ≥ 1", e.topk_per_level)
    need(e.max_detections >= 1, "eval.max_detections", "an integer ≥ 1", e.max_detections)


def load_config(path: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """Read a YAML config: returns the config and the raw mapping (fields the user set)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    return TrainConfig.from_dict(data, source=str(path)), data


def save_config(config: TrainConfig, path: Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
