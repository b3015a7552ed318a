"""Box and label checks every importer applies, with the service's codes.

One implementation, so a box dropped from a Ground Truth manifest is dropped from the same
dataset's VOC or COCO files too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from customlabels.core.boxes import FloatArray, as_boxes
from customlabels.formats.report import ValidationReport

__all__ = [
    "FRAME_TOLERANCE_PX",
    "MAX_LABEL_NAME_LENGTH",
    "SERVICE_BOX_CHECK_SIDE",
    "SERVICE_MAX_BOXES",
    "check_boxes",
    "check_label_name",
]

# The service downscales images whose longer side is over 1280 px before its "too small" check.
SERVICE_BOX_CHECK_SIDE = 1280
# Overshoot of the frame tolerated (and clipped away) as float round-off, in pixels.
FRAME_TOLERANCE_PX = 1e-3
# The service refuses more boxes than this per image; we accept them and warn (see docs).
SERVICE_MAX_BOXES = 50
MAX_LABEL_NAME_LENGTH = 256


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"


def _describe(box: npt.NDArray[np.float64]) -> str:
    x1, y1, x2, y2 = (float(v) for v in box)
    return f"left {_fmt(x1)}, top {_fmt(y1)}, width {_fmt(x2 - x1)}, height {_fmt(y2 - y1)}"


def check_boxes(
    boxes: FloatArray,
    size_wh: tuple[int, int] | None,
    report: ValidationReport,
    line: int | None,
    fields: Sequence[str],
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Check ``xyxy`` pixel boxes against the image frame; report the bad ones.

    Args:
        boxes: float64 ``(N, 4)`` ``xyxy`` pixels.
        size_wh: the image's ``(width, height)``; frame checks are skipped when ``None``.
        report: where problems go (as item errors: the box is dropped, the line stays).
        line: 1-based line/record number for messages.
        fields: ``N`` field names (e.g. ``bee-labels.annotations[3]``).

    Returns:
        ``(kept, keep)``: the boxes kept, ``(K, 4)``, with round-off overshoots of the frame
        (up to :data:`FRAME_TOLERANCE_PX`) clipped away, and the bool ``(N,)`` mask of kept
        boxes.
    """
    b = as_boxes(boxes).copy()
    if size_wh:
        tol = FRAME_TOLERANCE_PX
        w0, h0 = size_wh
        inside = (b[:, [0, 1]] >= -tol).all(1) & (b[:, 2] <= w0 + tol) & (b[:, 3] <= h0 + tol)
        b[inside] = np.clip(b[inside], 0, [w0, h0, w0, h0])
    keep = np.ones(len(b), dtype=bool)
    w, h = size_wh if size_wh else (math.inf, math.inf)
    longer = max(w, h)
    scale = SERVICE_BOX_CHECK_SIDE / longer if longer > SERVICE_BOX_CHECK_SIDE else 1.0
    for i, box in enumerate(b):
        x1, y1, x2, y2 = (float(v) for v in box)
        problem: tuple[str, str] | None = None
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            problem = ("ERROR_INVALID_BOUNDING_BOX", "expected finite numbers")
        elif x2 < x1 or y2 < y1:
            problem = ("ERROR_INVALID_BOUNDING_BOX", "negative width or height")
        elif x1 < 0 or y1 < 0:
            problem = ("ERROR_INVALID_BOUNDING_BOX", "negative left or top; expected ≥ 0")
        elif x2 > w or y2 > h:
            problem = (
                "ERROR_INVALID_BOUNDING_BOX",
                f"outside the {int(w)}×{int(h)} image; expected left+width ≤ {int(w)} and "
                f"top+height ≤ {int(h)}",
            )
        elif x2 == x1 or y2 == y1:
            problem = ("ERROR_INVALID_BOUNDING_BOX", "zero area; expected width and height > 0")
        elif (x2 - x1) * scale <= 1 or (y2 - y1) * scale <= 1:
            problem = (
                "ERROR_BOUNDING_BOX_TOO_SMALL",
                "a side is 1 px or less (after scaling the image's longer side to "
                f"{SERVICE_BOX_CHECK_SIDE} px); expected more than 1×1 px",
            )
        if problem is not None:
            keep[i] = False
            code, why = problem
            report.item_error(line, code, f"box ({_describe(box)}): {why}; box dropped", fields[i])
    return b[keep], keep


def check_label_name(
    name: object, report: ValidationReport, line: int | None, field: str
) -> str | None:
    """Return ``name`` if it is a usable label name, else report it and return ``None``."""
    if not isinstance(name, str) or not name.strip():
        report.item_error(
            line,
            "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
            f"expected a non-empty label name, got {name!r}",
            field,
        )
        return None
    if len(name) > MAX_LABEL_NAME_LENGTH:
        report.item_error(
            line,
            "ERROR_INVALID_LABEL_NAME_LENGTH",
            f"label name of {len(name)} characters; expected at most {MAX_LABEL_NAME_LENGTH}",
            field,
        )
        return None
    return name
