"""Thumbnails for the image browser, cached in memory (LRU, bounded by bytes).

A 1920×1080 bee frame is ~400 KB; its 320-px JPEG thumbnail is ~15 KB and, once cached,
answers in microseconds, so a 48-image page costs 48 decodes the first time only
(``bench/console_pages.py`` measures both). Boxes are not burnt in: pages draw them as SVG over
the image, in the label's colour, so one cached thumbnail serves every filter.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

from customlabels.io.images import decode_image

__all__ = ["ThumbnailCache", "make_thumbnail"]


def make_thumbnail(data: bytes, name: str, max_side: int = 320) -> bytes:
    """A JPEG at most ``max_side`` px a side (EXIF orientation applied).

    Raises:
        InvalidImageError / ImageTooLargeError: as :func:`~customlabels.io.images.decode_image`.
    """
    img = decode_image(data, name)
    img.thumbnail((max_side, max_side))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=82)
    return out.getvalue()


class ThumbnailCache:
    """LRU of thumbnail bytes keyed by ``(dataset ARN, entry id, source-ref, side)``.

    Args:
        max_bytes: evict the least recently used thumbnails beyond this total.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int, str, int], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, str, int]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[str, int, str, int], data: bytes) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            self._size -= len(old) if old else 0
            self._items[key] = data
            self._size += len(data)
            while self._size > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
