"""One DetectCustomLabels call: image bytes -> ``{"CustomLabels": [...]}`` (no torch)."""

from __future__ import annotations

from typing import Any

from customlabels.inference.predictor import Predictor
from customlabels.inference.response import check_request_limits, to_custom_labels
from customlabels.io.images import DEFAULT_LIMITS, ImageLimits, decode_image

__all__ = ["detect_bytes"]


def detect_bytes(
    predictor: Predictor,
    data: bytes,
    name: str = "image",
    min_confidence: float | None = None,
    max_results: int | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
    raw: bool = False,
) -> dict[str, Any]:
    """Run the model on an encoded JPEG/PNG and render the service's response.

    Args:
        min_confidence: 0–100; None applies each label's assumed threshold from the card.
        max_results: at most this many labels (None: all).
        raw: add each label's ``RawConfidence`` (the uncalibrated score, 0–100).

    Raises:
        InvalidImageError, ImageTooLargeError: the bytes are not a usable image.
        InvalidParameterError: ``min_confidence``/``max_results`` out of range.
    """
    check_request_limits(min_confidence, max_results)
    image = decode_image(data, name, limits)
    detections = predictor.predict(image)
    card = predictor.card
    return {
        "CustomLabels": to_custom_labels(
            detections,
            card.labels,
            image.size,
            card.thresholds,
            min_confidence=min_confidence,
            max_results=max_results,
            raw=raw,
        )
    }
