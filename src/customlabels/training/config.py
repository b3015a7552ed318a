"""``TrainConfig``: every training knob, with its default and its allowed range, in one place.

The fields are pydantic models: the type, default and constraint of each knob sit on the knob.
``config.yaml`` in a model folder is ``TrainConfig.to_dict()``; ``--config FILE.yaml`` reads it
back (any subset of fields). Unknown or ill-typed fields raise :class:`ConfigError` naming the
file and the field (``my.yaml: optim.lr: expected < 1, got 5``). The automatic recipe
(``recipe.py``) fills in what the user did not fix.

Configs are frozen: a run never changes the one it was given. Each step that settles a value
(the recipe, the views computed in the budget, the steps planned, the NMS IoU chosen on
validation) makes a resolved copy with :meth:`TrainConfig.resolved`, validated like a file.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from customlabels.core.durations import DEFAULT_TIME_BUDGET_S
from customlabels.errors import ConfigError

__all__ = [
    "AugmentConfig",
    "BackboneName",
    "Device",
    "EvalConfig",
    "HeadName",
    "InputConfig",
    "ModelConfig",
    "OptimConfig",
    "TaskChoice",
    "TrainConfig",
    "load_config",
    "save_config",
]


class TaskChoice(StrEnum):
    """What to train; ``auto`` follows the dataset (boxes -> detector, labels -> classifier)."""

    AUTO = "auto"
    DETECTION = "detection"
    CLASSIFICATION = "classification"


class Device(StrEnum):
    """Where to train; ``auto`` is CUDA when a device is present, else the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class BackboneName(StrEnum):
    """Pretrained feature extractors (each a ``BACKBONES`` entry in ``training/backbone.py``)."""

    # ImageNet-trained EfficientNet-Lite0 (the default).
    EFFICIENTNET_LITE0 = "efficientnet-lite0"
    # The COCO-trained MobileNetV2 trunk of TensorFlow's SSD-MobileNetV2 (issue 15, lever 1a).
    MOBILENETV2_SSD_COCO = "mobilenetv2-ssd-coco"


class HeadName(StrEnum):
    """Detector heads (each a ``DETECTION_HEADS`` entry in ``training/tasks.py``)."""

    # FPN + FCOS head, trained from scratch on the backbone's maps (the default).
    FCOS = "fcos"
    # The whole COCO SSD of mobilenetv2-ssd-coco: its extra layers and box predictors kept, new
    # class predictors (issue 15, lever 1b).
    SSD = "ssd"


def _zero_or_side(value: int) -> int:
    if value != 0 and (value < 64 or value % 32):
        raise ValueError("0 or a multiple of 32 ≥ 64")
    return value


# Shared field types.
Fraction = Annotated[float, Field(ge=0, le=1)]  # a probability or a share, 0–1
Side = Annotated[int, Field(ge=64, multiple_of=32)]  # pixels; the backbone's stride is 32
Positive = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]


class _Section(BaseModel):
    """A group of knobs: typed strictly (``true`` is not an integer, ``"0.1"`` not a number),
    closed to unknown fields, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ModelConfig(_Section):
    # Pretrained feature extractor: efficientnet-lite0 or mobilenetv2-ssd-coco (docs/training.md).
    backbone: Annotated[BackboneName, Field(strict=False)] = BackboneName.EFFICIENTNET_LITE0
    # Detector head: fcos (FPN + FCOS) or ssd (the whole COCO SSD, its box predictors kept; needs
    # backbone mobilenetv2-ssd-coco, which the recipe then picks). docs/training.md.
    head: Annotated[HeadName, Field(strict=False)] = HeadName.FCOS
    # Width of the FPN and of the FCOS head (detector only); GroupNorm uses 32 groups.
    fpn_channels: Annotated[int, Field(gt=0, multiple_of=32)] = 64
    # 3×3 conv + GroupNorm + ReLU layers in each FCOS head branch.
    head_convs: Annotated[int, Field(ge=1, le=4)] = 2
    # FCOS positive sampling radius, in strides.
    center_sampling_radius: Annotated[float, Field(gt=0)] = 1.5
    # Fine-tune the backbone's last N stages (0 = frozen; 1 = the stride-32 stage over cached
    # stride-16 maps; 2 = the stride-16 and stride-32 stages over cached stride-8 maps). The
    # classifier also fine-tunes the final 1×1 conv when N > 0. 2: clearly better for bee-crops,
    # as good on the bee frames in a third of the steps, slightly worse on BCCD
    # (bench/results/training.md).
    finetune_stages: Annotated[int, Field(ge=0, le=2)] = 2
    # Classifier: hidden layer width on the pooled features (0 = a linear layer).
    classifier_hidden: Count = 0
    # Learning rate of fine-tuned backbone blocks (detector or classifier), × optim.lr.
    tail_lr_scale: Annotated[float, Field(gt=0, le=1)] = 0.05


class InputConfig(_Section):
    # The served input (model.json "input"): letterboxed to width × height.
    width: Side = 640
    height: Side = 640
    # Detector training crops, in pixels of the (scaled) image. Training on crops of a
    # high-resolution image while detecting on the whole frame.
    crop: Side = 320
    # Detector views larger than this side (pixels) are cut to a window of it around a random
    # box before the backbone runs, so caching costs per window, not per up-scaled frame
    # (0 = whole views; never less than input.crop).
    view_window: Annotated[int, AfterValidator(_zero_or_side)] = 512


class AugmentConfig(_Section):
    # Augmented copies of each training image whose backbone features are computed once and
    # cached (torchvision.transforms.v2; the first copy is un-augmented at scale 1).
    views_per_image: Positive = 3
    # Scale jitter: each view is resized by a factor in [scale_min, scale_max] of the input scale.
    scale_min: Annotated[float, Field(gt=0, le=4)] = 0.6
    scale_max: Annotated[float, Field(gt=0, le=4)] = 1.6
    # Flip probabilities.
    hflip: Fraction = 0.5
    vflip: Fraction = 0.0
    # Colour jitter strength (brightness/contrast/saturation ± this, hue ± this/4).
    color: Fraction = 0.25
    # Fraction of detector crops centred on a (repeat-factor sampled) box; the rest are random.
    object_crops: Fraction = 0.7
    # A box cut by a crop is kept when at least this fraction of its area remains.
    min_visible: Fraction = 0.4
    # Repeat-factor sampling threshold (LVIS): images with labels rarer than this fraction of
    # images are drawn more often (0 disables).
    repeat_threshold: Fraction = 0.3

    @field_validator("scale_max")
    @classmethod
    def _not_below_scale_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("scale_min")
        if low is not None and value < low:
            raise ValueError(f"≥ scale_min ({low})")
        return value


class OptimConfig(_Section):
    # Training steps; null = as many as the time budget allows (measured step time).
    steps: Annotated[int | None, Field(ge=1)] = None
    batch_size: Positive = 8
    # AdamW.
    lr: Annotated[float, Field(gt=0, lt=1)] = 0.002
    weight_decay: Annotated[float, Field(ge=0)] = 0.0001
    # Linear warm-up steps, then cosine decay to lr × final_lr_fraction.
    warmup_steps: Count = 100
    final_lr_fraction: Fraction = 0.02
    # Gradient-norm clipping (0 disables).
    clip_grad: Annotated[float, Field(ge=0)] = 10.0
    # Exponential moving average of the weights over about this fraction of the run's steps,
    # validated and kept instead of the trained weights (0 = off).
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.0


class EvalConfig(_Section):
    # Fraction of the training part carved out as validation (group-aware), never the test set.
    validation_fraction: Annotated[float, Field(gt=0, lt=0.9)] = 0.15
    # Automatic test split when no --test manifest is given.
    test_fraction: Annotated[float, Field(gt=0, lt=0.9)] = 0.2
    # Validate every this many steps (0 = about eight times per run).
    every: Count = 0
    # Decoding (written to model.json "head"): candidates below this score are dropped.
    score_threshold: Annotated[float, Field(ge=0, lt=1)] = 0.05
    # Class-wise NMS IoU; null: chosen after training on validation among 0.4–0.7 (dense
    # clusters of small objects gain from a lower value, touching cells do not).
    nms_iou: Annotated[float | None, Field(gt=0, le=1)] = None
    # Sliced inference (detector): after the NMS choice, score validation with overlapping
    # magnified tiles merged in, and keep it (model.json "tiling") only where it beats the whole
    # frame alone; false: never. Off where validation frames fit the served input. Off by
    # default: the choice runs the tiles of every validation frame in torch, and its time comes
    # out of the budget (130 s of a 5-minute bee run: 100 steps instead of ~650), while no
    # trained model has yet been measured to gain from tiles (bench/results/tiling.md).
    tiling: bool = False
    topk_per_level: Positive = 1000
    max_detections: Positive = 1000


class TrainConfig(_Section):
    """All knobs of a training run (see ``docs/training.md``)."""

    # Enums are read from their names in YAML (strict typing would want an enum instance).
    task: Annotated[TaskChoice, Field(strict=False)] = TaskChoice.AUTO
    # Seconds for the whole run (caching, training, validation); used when optim.steps is null.
    time_budget_s: Annotated[float, Field(gt=0)] = DEFAULT_TIME_BUDGET_S
    seed: int = 0
    device: Annotated[Device, Field(strict=False)] = Device.AUTO
    # CPU threads for torch (0 = the idle cores: all of them on an idle machine, 1 on a busy one).
    threads: Count = 0
    model: ModelConfig = ModelConfig()
    input: InputConfig = InputConfig()
    augment: AugmentConfig = AugmentConfig()
    optim: OptimConfig = OptimConfig()
    eval: EvalConfig = EvalConfig()

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON values (enums as their names), every field."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> TrainConfig:
        """Build from a (partial) mapping; raises :class:`ConfigError` naming ``source`` and
        each field at fault."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: config: expected a mapping, got {data!r}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(
                f"{source}: " + "; ".join(_describe(e) for e in exc.errors())
            ) from None

    def resolved(self, changes: dict[str, Any], source: str = "resolved config") -> TrainConfig:
        """A copy with ``{"optim.steps": 120, ...}`` (dotted field paths) set, validated like a
        file (``source`` names where the values came from in an error)."""
        data = self.to_dict()
        for dotted, value in changes.items():
            *parents, name = dotted.split(".")
            node = data
            for part in parents:
                node = node[part]
            if name not in node:
                raise KeyError(f"no config field {dotted!r}")
            node[name] = value
        return TrainConfig.from_dict(data, source=source)


# "expected …" for each pydantic error type (its ``ctx`` fills the braces).
_EXPECTED = {
    "greater_than": "> {gt}",
    "greater_than_equal": "≥ {ge}",
    "less_than": "< {lt}",
    "less_than_equal": "≤ {le}",
    "multiple_of": "a multiple of {multiple_of}",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "enum": "one of {expected}",
    "model_type": "a mapping",
    "value_error": "{error}",
}


def _describe(error: Any) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "config"
    if error["type"] == "extra_forbidden":
        return f"unknown field {path}; expected one of {_field_names(error['loc'][:-1])}"
    template = _EXPECTED.get(error["type"])
    ctx = error.get("ctx") or {}
    expected = template.format(**ctx) if template else error["msg"]
    value = error["input"]
    return f"{path}: expected {expected}, got {'null' if value is None else repr(value)}"


def _field_names(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = TrainConfig
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation
    return sorted(model.model_fields)


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
    """Write ``config`` as YAML in field order (what :func:`load_config` reads back)."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
