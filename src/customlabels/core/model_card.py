"""``model.json``: the model card every model version folder carries.

The contract between training (which writes it) and serving, evaluation and the pipeline (which
read it) is documented in ``docs/model-folder.md``. Confidences and thresholds are in 0–1 here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from customlabels.core.dataset import Task
from customlabels.errors import InvalidParameterError

__all__ = ["CARD_NAME", "FORMAT_VERSION", "ONNX_NAME", "InputSpec", "ModelCard", "TilingSpec"]

FORMAT_VERSION = 1
CARD_NAME = "model.json"
ONNX_NAME = "model.onnx"


@dataclass
class InputSpec:
    """How an image becomes the ONNX input tensor ``images`` (float32 ``(N, 3, H, W)``, RGB).

    ``resize``: ``letterbox`` (keep aspect, scale to fit, pad right/bottom with ``pad_value``)
    or ``stretch`` (resize to exactly ``width × height``). Pixels are then ``(x - mean) / std``
    per channel, ``x`` in 0–255.
    """

    width: int
    height: int
    resize: str = "letterbox"
    mean: list[float] = field(default_factory=lambda: [127.0, 127.0, 127.0])
    std: list[float] = field(default_factory=lambda: [128.0, 128.0, 128.0])
    pad_value: float = 0.0


@dataclass(frozen=True)
class TilingSpec:
    """Sliced inference (``model.json`` ``tiling``; absent or ``null``: off).

    A frame larger than the served input is run twice over: whole, as the card's ``input``
    says, and cut into ``grid`` = ``(columns, rows)`` overlapping tiles, each run at ``scale``
    times the whole frame's served magnification (so an object of 16 px on the served input is
    ``16 · scale`` px on a tile's). Neighbouring tiles share ``overlap`` of a tile's side
    (0–0.5). The mechanics are in :mod:`customlabels.inference.tiling`.
    """

    grid: tuple[int, int]
    overlap: float
    scale: float

    def __post_init__(self) -> None:
        cols, rows = self.grid
        if not (1 <= cols <= 8 and 1 <= rows <= 8):
            raise InvalidParameterError(
                f"tiling.grid: expected 1–8 columns and rows, got {list(self.grid)}"
            )
        if not 0 <= self.overlap < 0.5:
            raise InvalidParameterError(f"tiling.overlap: expected 0–0.5, got {self.overlap}")
        if not 1 <= self.scale <= 4:
            raise InvalidParameterError(f"tiling.scale: expected 1–4, got {self.scale}")

    def to_dict(self) -> dict[str, Any]:
        return {"grid": list(self.grid), "overlap": self.overlap, "scale": self.scale}

    @classmethod
    def from_dict(cls, data: Any) -> TilingSpec:
        """Read ``{"grid": [c, r], "overlap": o, "scale": s}``; raises InvalidParameterError."""
        try:
            cols, rows = (int(v) for v in data["grid"])
            return cls((cols, rows), float(data["overlap"]), float(data["scale"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameterError(
                f"tiling: expected {{grid: [columns, rows], overlap, scale}}, got {data!r} "
                f"({exc!r})"
            ) from None


@dataclass
class ModelCard:
    """Everything needed to run, judge and reproduce a model version.

    Attributes:
        task: detection (``OBJECT_LOCALIZATION``) or classification (``IMAGE_LEVEL_LABELS``).
        labels: label names; a class id is an index into this list.
        input: preprocessing contract of ``model.onnx``.
        head: decoding parameters read by the numpy decoder (strides, NMS IoU, caps, ...).
        thresholds: per-label assumed threshold (best F1 on the validation split), 0–1, on
            the calibrated scale when ``calibration`` is set.
        multi_label: classification with per-label sigmoid instead of softmax.
        metrics: ``{"validation": {...}, "test": {...}}`` as written by training/evaluation.
        training: seconds, steps, device, seed, timestamps.
        recipe: the training config actually used (``config.yaml`` as a dict).
        dataset: hashes and the train/validation/test image lists.
        versions: package versions at training time.
        version_name: a human name for this model version.
        calibration: the map from raw score to P(true positive at IoU 0.5), fitted on the
            validation split (``{pooled, labels, evidence, ...}``, see
            :class:`customlabels.inference.calibration.Calibration`); ``{}``: raw scores.
        tiling: sliced inference chosen on validation (:class:`TilingSpec`); ``None``: off
            (also every card written before it existed).
    """

    task: Task
    labels: list[str]
    input: InputSpec
    head: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    multi_label: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    version_name: str = ""
    calibration: dict[str, Any] = field(default_factory=dict)
    tiling: TilingSpec | None = None
    format_version: int = FORMAT_VERSION

    def threshold_for(self, label: str) -> float:
        return float(self.thresholds.get(label, 0.5))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["task"] = self.task.value
        data["tiling"] = self.tiling.to_dict() if self.tiling else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = CARD_NAME) -> ModelCard:
        try:
            version = int(data.get("format_version", FORMAT_VERSION))
            if version > FORMAT_VERSION:
                raise InvalidParameterError(
                    f"{source}: format_version {version} is newer than this customlabels "
                    f"understands ({FORMAT_VERSION}); upgrade customlabels"
                )
            fields = dict(data)
            fields["task"] = Task(fields["task"])
            fields["input"] = InputSpec(**fields["input"])
            fields["labels"] = [str(x) for x in fields["labels"]]
            tiling = fields.get("tiling")
            fields["tiling"] = TilingSpec.from_dict(tiling) if tiling else None
            return cls(**fields)
        except InvalidParameterError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameterError(f"{source}: not a valid model card ({exc!r})") from None

    def save(self, model_dir: Path) -> Path:
        path = Path(model_dir) / CARD_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: Path) -> ModelCard:
        path = Path(model_dir) / CARD_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InvalidParameterError(
                f"{model_dir}: not a model folder (expected {CARD_NAME} and {ONNX_NAME})"
            ) from None
        except json.JSONDecodeError as exc:
            raise InvalidParameterError(f"{path}: invalid JSON ({exc})") from None
        return cls.from_dict(data, source=str(path))
