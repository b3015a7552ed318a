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

__all__ = ["CARD_NAME", "FORMAT_VERSION", "ONNX_NAME", "InputSpec", "ModelCard"]

#: The newest card format this customlabels reads. 1: a float32 model (every card before int8
#: export); 2: a card with ``quantization``. A card is written in the lowest format that holds
#: it, so float32 cards stay readable by older versions, and an older version refuses an int8
#: card with "upgrade customlabels" rather than with an unknown field.
FORMAT_VERSION = 2
_FLOAT_FORMAT = 1
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
        quantization: how ``model.onnx`` was quantized from the float32 model (``{type: "int8",
            format: "QDQ", per_channel, activations, weights, calibration: {...},
            fp32_metrics, ...}``, see :mod:`customlabels.inference.quantize`); ``{}`` (or
            missing, older cards): the float32 model as trained.
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
    quantization: dict[str, Any] = field(default_factory=dict)
    format_version: int = _FLOAT_FORMAT

    def threshold_for(self, label: str) -> float:
        return float(self.thresholds.get(label, 0.5))

    @property
    def precision(self) -> str:
        """``"int8"`` for a quantized model, else ``"fp32"``."""
        return str(self.quantization.get("type", "int8")) if self.quantization else "fp32"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["task"] = self.task.value
        # the lowest format that holds the card (see FORMAT_VERSION)
        data["format_version"] = FORMAT_VERSION if self.quantization else _FLOAT_FORMAT
        if not self.quantization:
            del data["quantization"]
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
