"""The model a pipeline worker keeps loaded, and the version its results are stamped with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customlabels.core.model_card import ONNX_NAME, ModelCard
from customlabels.io.images import DEFAULT_LIMITS, ImageLimits

__all__ = ["LoadedModel", "load_model", "model_version"]


def model_version(model_dir: Path) -> str:
    """``<version_name or folder name>@<first 12 hex of sha256(model.onnx)>``.

    Two folders holding the same ONNX file share a version; retraining changes it, so results
    written by an older model are recomputed.
    """
    model_dir = Path(model_dir)
    card = ModelCard.load(model_dir)
    digest = hashlib.sha256()
    with (model_dir / ONNX_NAME).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"{card.version_name or model_dir.name}@{digest.hexdigest()[:12]}"


@dataclass
class LoadedModel:
    """An ONNX Runtime predictor loaded once per worker process.

    Attributes:
        version: see :func:`model_version`.
        card: the model card (labels, assumed thresholds in 0–1).
        predictor: a ``customlabels.inference.predictor.Predictor``.
    """

    version: str
    card: ModelCard
    predictor: Any
    limits: ImageLimits = DEFAULT_LIMITS

    def detect(
        self, data: bytes, name: str, min_confidence: float | None, max_results: int | None
    ) -> dict[str, Any]:
        """The DetectCustomLabels response for encoded image bytes (confidences 0–100).

        Raises:
            InvalidImageError, ImageTooLargeError: a bad image.
        """
        from customlabels.inference.detect import detect_bytes

        response: dict[str, Any] = detect_bytes(
            self.predictor,
            data,
            name,
            min_confidence=min_confidence,
            max_results=max_results,
            limits=self.limits,
        )
        return response


def load_model(model_dir: Path, threads: int = 1) -> LoadedModel:
    """Load ``model_dir`` with ONNX Runtime (``threads`` intra-op threads)."""
    from customlabels.inference.predictor import Predictor

    predictor = Predictor.load(Path(model_dir), threads=threads)
    return LoadedModel(version=model_version(model_dir), card=predictor.card, predictor=predictor)
