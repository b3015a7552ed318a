"""Rendering detections as the service's DetectCustomLabels response.

Confidence is 0–1 in :class:`Detections` and 0–100 in the response, as in Rekognition. It is
the calibrated confidence (P(true positive), see :mod:`customlabels.inference.calibration`)
when the model card carries a calibration; ``raw=True`` adds the model's raw score as
``RawConfidence`` (0–100, for experts; not a service field).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from customlabels.core.boxes import box_area, clip_xyxy, xyxy_to_ltwh_norm
from customlabels.core.detections import Detections
from customlabels.errors import InvalidParameterError

__all__ = ["check_request_limits", "to_custom_labels"]


def check_request_limits(min_confidence: float | None, max_results: int | None) -> None:
    """Validate ``MinConfidence`` (0–100) and ``MaxResults`` (≥ 0) as the service does."""
    if min_confidence is not None and not 0 <= min_confidence <= 100:
        raise InvalidParameterError(
            f"MinConfidence: expected a number in 0–100, got {min_confidence}"
        )
    if max_results is not None and max_results < 0:
        raise InvalidParameterError(f"MaxResults: expected an integer ≥ 0, got {max_results}")


def to_custom_labels(
    detections: Detections,
    labels: list[str],
    size_wh: tuple[int, int],
    thresholds: dict[str, float],
    min_confidence: float | None = None,
    max_results: int | None = None,
    raw: bool = False,
) -> list[dict[str, Any]]:
    """Return ``CustomLabels``: a list of ``{Name, Confidence, Geometry?}``, highest first.

    Args:
        detections: boxes in ``xyxy`` pixels of the image of ``size_wh``, scores 0–1; boxes
            ``None`` for a classifier (then no ``Geometry``).
        thresholds: per-label assumed thresholds (0–1), used when ``min_confidence`` is None.
        min_confidence: 0–100, applied to every label.
        max_results: keep at most this many (None: all).
        raw: add ``RawConfidence`` (0–100) when the detections carry raw scores.
    """
    check_request_limits(min_confidence, max_results)
    if min_confidence is not None:
        keep = detections.scores * 100.0 >= min_confidence
    else:
        per_label = np.array([thresholds.get(name, 0.5) for name in labels] or [0.5])
        keep = detections.scores >= per_label[detections.class_ids]
    if detections.boxes is not None:
        # a box that lies outside the frame has no area once clipped: not a detection
        keep &= box_area(clip_xyxy(detections.boxes, size_wh)) > 0
    dets = detections[keep].sorted()
    if max_results is not None:
        dets = dets[slice(0, max_results)]
    norm = None
    if dets.boxes is not None:
        norm = xyxy_to_ltwh_norm(clip_xyxy(dets.boxes, size_wh), size_wh)
    out: list[dict[str, Any]] = []
    for i in range(len(dets)):
        item: dict[str, Any] = {
            "Name": labels[int(dets.class_ids[i])],
            "Confidence": round(float(dets.scores[i]) * 100.0, 4),
        }
        if raw and dets.raw_scores is not None:
            item["RawConfidence"] = round(float(dets.raw_scores[i]) * 100.0, 4)
        if norm is not None:
            left, top, width, height = (round(float(v), 6) for v in norm[i])
            item["Geometry"] = {
                "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top}
            }
        out.append(item)
    return out
