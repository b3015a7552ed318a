"""Safe image decoding: JPEG and PNG by content, EXIF orientation, size caps, never a crash.

Every image the package reads goes through here, so the limits are checked in one place and in
the cheapest order: byte count, then magic bytes, then the header's dimensions (before any pixel
is decoded), then the full decode (which reports truncated files). The service's limits are
declared here once (:data:`DEFAULT_LIMITS`, :data:`REQUEST_LIMITS`, :data:`TRAINING_LIMITS`).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from customlabels.errors import ImageTooLargeError, InvalidImageError

__all__ = [
    "DEFAULT_LIMITS",
    "REQUEST_LIMITS",
    "TRAINING_LIMITS",
    "ImageLimits",
    "decode_image",
    "open_image_file",
    "read_image_bytes",
    "read_size_wh",
    "sniff_format",
]

_MB = 1024 * 1024

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Pillow's own decompression-bomb guard stays on (it raises above 2× this many pixels); our
# pixel cap below is stricter and reported with the service's exception name.
Image.MAX_IMAGE_PIXELS = 100_000_000


@dataclass(frozen=True)
class ImageLimits:
    """Bounds checked before decoding.

    Defaults follow the service's limits for S3 objects: 15 MB, up to 4096 px a side. The pixel
    cap keeps a decompression bomb from reaching the decoder. ``max_aspect`` (longer side over
    shorter) is checked by the dataset validator, not by the decoder.
    """

    max_bytes: int = 15 * _MB
    min_side: int = 1
    max_side: int = 4096
    max_pixels: int = 4096 * 4096
    max_aspect: float = math.inf


# DetectCustomLabels on an S3 object, the pipeline, training: 15 MB, up to 4096 px a side.
DEFAULT_LIMITS = ImageLimits()
# DetectCustomLabels with the image in the request (Image.Bytes): the service's 4 MB.
REQUEST_LIMITS = ImageLimits(max_bytes=4 * _MB)
# Dataset images, as the service validates them: 15 MB, sides 64–4096 px, aspect ratio ≤ 20:1.
TRAINING_LIMITS = ImageLimits(min_side=64, max_aspect=20.0)


def sniff_format(data: bytes, name: str = "image") -> str:
    """Return ``"JPEG"`` or ``"PNG"`` from the magic bytes, else raise InvalidImageError."""
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    raise InvalidImageError(f"{name}: not a JPEG or PNG image (by content)")


def read_image_bytes(path: Path, limits: ImageLimits = DEFAULT_LIMITS) -> bytes:
    """Read a file's bytes, refusing files over ``limits.max_bytes`` before reading them."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size > limits.max_bytes:
        raise ImageTooLargeError(f"{path}: {size} bytes, over the limit of {limits.max_bytes}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _open(data: bytes, name: str, limits: ImageLimits) -> Image.Image:
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"{name}: {len(data)} bytes, over the limit of {limits.max_bytes}")
    sniff_format(data, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"{name}: unreadable image ({exc})") from None
    w, h = img.size
    if w * h > limits.max_pixels or max(w, h) > limits.max_side:
        raise ImageTooLargeError(
            f"{name}: {w}×{h} px, over the limit of {limits.max_side} px a side and "
            f"{limits.max_pixels} pixels"
        )
    if min(w, h) < limits.min_side:
        raise InvalidImageError(f"{name}: {w}×{h} px, under {limits.min_side} px a side")
    return img


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    w, h = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block must not hide an otherwise good image
        orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def read_size_wh(
    data: bytes, name: str = "image", limits: ImageLimits = DEFAULT_LIMITS
) -> tuple[int, int]:
    """``(width, height)`` after EXIF orientation, from the header only (no pixel decoding)."""
    return _oriented_size(_open(data, name, limits))


def decode_image(
    data: bytes, name: str = "image", limits: ImageLimits = DEFAULT_LIMITS
) -> Image.Image:
    """Decode to an RGB image with EXIF orientation applied.

    Raises:
        InvalidImageError: not JPEG/PNG by content, unreadable, or truncated.
        ImageTooLargeError: over ``limits`` (checked before decoding pixels).
    """
    img = _open(data, name, limits)
    try:
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"{name}: truncated or corrupt image data ({exc})") from None


def open_image_file(
    path: Path,
    limits: ImageLimits = DEFAULT_LIMITS,
    max_side: int | None = None,
    mode: str = "RGB",
) -> Image.Image:
    """Decode a file with EXIF orientation applied, through the same checks as
    :func:`decode_image`.

    Args:
        path: the image file.
        limits: checked before the file is read (bytes) and before pixels are decoded (sides).
        max_side: a JPEG is decoded at a reduced scale (Pillow's ``draft``) whose longer side is
            still at least this many pixels: decoding a 1920-px frame at half size is ~3× faster.
        mode: Pillow mode of the result (``RGB``, ``L``).

    Raises:
        InvalidImageError, ImageTooLargeError: as :func:`decode_image`.
    """
    data = read_image_bytes(path, limits)
    img = _open(data, path.name, limits)
    try:
        if max_side is not None and img.format == "JPEG":
            w, h = img.size
            factor = max_side / max(w, h)
            if factor < 1:
                img.draft(mode, (math.ceil(w * factor), math.ceil(h * factor)))
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return img.convert(mode)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"{path.name}: truncated or corrupt image data ({exc})") from None
