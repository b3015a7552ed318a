"""Small file helpers shared by the format writers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from customlabels.core.dataset import ImageRecord
from customlabels.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "place_image", "size_of", "write_text_atomic"]

# Suffixes listed when a format finds images by walking folders (content is checked later).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


def place_image(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst``: a hard link when possible (no extra space), else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        if dst.samefile(src):
            return
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def size_of(image: ImageRecord) -> tuple[int, int]:
    """The image's ``(width, height)``: as declared, else read from its file's header.

    Raises:
        DatasetError: unknown size and no file; InvalidImageError / ImageTooLargeError for a
            bad file.
    """
    if image.size_wh is not None:
        return image.size_wh
    if image.path is not None:
        from customlabels.io.images import read_image_bytes, read_size_wh

        return read_size_wh(read_image_bytes(image.path), str(image.path))
    raise DatasetError(f"{image.ref}: image size unknown and no file to read it from")
