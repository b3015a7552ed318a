"""Checking image files before training, fast: headers and end markers, not pixels.

Every check goes through :mod:`customlabels.io.images` (magic bytes, Pillow's decompression-bomb
guard, EXIF orientation, size caps). Truncation is found without decoding: a complete JPEG ends
with the EOI marker ``FF D9`` and a complete PNG with its ``IEND`` chunk; ``deep=True`` decodes
every pixel as well (slower, finds corrupt data in the middle of a file).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from customlabels.errors import ImageTooLargeError, InvalidImageError
from customlabels.io.images import (
    TRAINING_LIMITS,
    ImageLimits,
    decode_image,
    read_size_wh,
    sniff_format,
)

__all__ = ["ImageCheck", "check_image_file"]


@dataclass(frozen=True)
class ImageCheck:
    """The outcome for one file: its oriented ``size_wh`` or an error ``code`` and message."""

    size_wh: tuple[int, int] | None = None
    code: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code is None


def _complete(data: bytes, fmt: str) -> bool:
    tail = data[-1024:]
    if fmt == "JPEG":
        # bytes after EOI (padding, appended data) are tolerated; no EOI at all is truncation
        return b"\xff\xd9" in tail
    return b"IEND" in tail[-64:]


def check_image_file(
    path: Path, rules: ImageLimits = TRAINING_LIMITS, deep: bool = False
) -> ImageCheck:
    """Check one image file; never raises for a bad image (the problem is in the result).

    Args:
        rules: the limits (the service's dataset rules by default, from
            :mod:`customlabels.io.images`).

    Returns:
        ``ImageCheck(size_wh=(w, h))`` after EXIF orientation, or a code among
        ``ERROR_INVALID_IMAGE`` (missing, unreadable, not PNG/JPEG by content, truncated,
        over ``max_bytes``) and ``ERROR_INVALID_IMAGE_DIMENSION`` (a side outside
        ``min_side``–``max_side``, an aspect ratio over ``max_aspect``, a decompression bomb).
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        return ImageCheck(
            code="ERROR_INVALID_IMAGE", message=f"cannot read {path} ({exc.strerror})"
        )
    if size > rules.max_bytes:
        return ImageCheck(
            code="ERROR_INVALID_IMAGE",
            message=f"{size:,} bytes; expected at most {rules.max_bytes:,}",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ImageCheck(
            code="ERROR_INVALID_IMAGE", message=f"cannot read {path} ({exc.strerror})"
        )
    limits = dataclasses.replace(rules, min_side=1)  # a small side gets its own code below
    try:
        fmt = sniff_format(data, path.name)
        w, h = read_size_wh(data, path.name, limits)
    except ImageTooLargeError as exc:
        return ImageCheck(
            code="ERROR_INVALID_IMAGE_DIMENSION",
            message=f"{exc.message}; expected sides of {rules.min_side}–{rules.max_side} px",
        )
    except InvalidImageError as exc:
        return ImageCheck(code="ERROR_INVALID_IMAGE", message=exc.message)
    if min(w, h) < rules.min_side:
        return ImageCheck(
            code="ERROR_INVALID_IMAGE_DIMENSION",
            message=f"{w}×{h} px; expected sides of {rules.min_side}–{rules.max_side} px",
        )
    if max(w, h) / min(w, h) > rules.max_aspect:
        return ImageCheck(
            code="ERROR_INVALID_IMAGE_DIMENSION",
            message=f"{w}×{h} px, aspect ratio over {rules.max_aspect:g}:1",
        )
    if not _complete(data, fmt):
        marker = "end-of-image marker FF D9" if fmt == "JPEG" else "IEND chunk"
        return ImageCheck(
            code="ERROR_INVALID_IMAGE",
            message=f"truncated {fmt}: the {marker} is missing ({size:,} bytes)",
        )
    if deep:
        try:
            decode_image(data, path.name, limits)
        except (InvalidImageError, ImageTooLargeError) as exc:
            return ImageCheck(code="ERROR_INVALID_IMAGE", message=exc.message)
    return ImageCheck(size_wh=(w, h))
