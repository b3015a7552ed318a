"""Box forms and the one place they are converted.

Inside the package a box is always float ``xyxy`` in pixels: ``[x1, y1, x2, y2]`` with
``x2 >= x1`` and ``y2 >= y1``, as an ``(N, 4)`` float64 array. Every other form is named for what
it is:

- ``ltwh``: ``[left, top, width, height]`` in pixels (Ground Truth manifests, COCO ``bbox``).
- ``ltwh_norm``: the same normalized by the image size (Rekognition ``BoundingBox``).
- ``xywh_norm``: ``[x_center, y_center, width, height]`` normalized (YOLO label files).

Sizes are ``size_wh = (width, height)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "FloatArray",
    "as_boxes",
    "box_area",
    "clip_xyxy",
    "ltwh_norm_to_xyxy",
    "ltwh_to_xyxy",
    "xywh_norm_to_xyxy",
    "xyxy_to_ltwh",
    "xyxy_to_ltwh_norm",
    "xyxy_to_xywh_norm",
]


def as_boxes(boxes: npt.ArrayLike) -> FloatArray:
    """Return ``boxes`` as a float64 ``(N, 4)`` array (an empty input gives ``(0, 4)``)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (N, 4), got {arr.shape}")
    return arr


def ltwh_to_xyxy(ltwh: npt.ArrayLike) -> FloatArray:
    """``[left, top, width, height]`` pixels → ``xyxy`` pixels."""
    b = as_boxes(ltwh)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_ltwh(xyxy: npt.ArrayLike) -> FloatArray:
    """``xyxy`` pixels → ``[left, top, width, height]`` pixels."""
    b = as_boxes(xyxy)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def _scale(size_wh: tuple[float, float]) -> FloatArray:
    w, h = size_wh
    if w <= 0 or h <= 0:
        raise ValueError(f"expected a positive image size, got {size_wh}")
    return np.array([w, h, w, h], dtype=np.float64)


def xyxy_to_ltwh_norm(xyxy: npt.ArrayLike, size_wh: tuple[float, float]) -> FloatArray:
    """``xyxy`` pixels → ``[left, top, width, height]`` normalized by ``size_wh``."""
    return xyxy_to_ltwh(xyxy) / _scale(size_wh)


def ltwh_norm_to_xyxy(ltwh_norm: npt.ArrayLike, size_wh: tuple[float, float]) -> FloatArray:
    """Normalized ``[left, top, width, height]`` → ``xyxy`` pixels."""
    return ltwh_to_xyxy(as_boxes(ltwh_norm) * _scale(size_wh))


def xyxy_to_xywh_norm(xyxy: npt.ArrayLike, size_wh: tuple[float, float]) -> FloatArray:
    """``xyxy`` pixels → YOLO ``[x_center, y_center, width, height]`` normalized."""
    b = as_boxes(xyxy)
    centre = (b[:, :2] + b[:, 2:]) / 2
    return np.concatenate([centre, b[:, 2:] - b[:, :2]], axis=1) / _scale(size_wh)


def xywh_norm_to_xyxy(xywh_norm: npt.ArrayLike, size_wh: tuple[float, float]) -> FloatArray:
    """YOLO ``[x_center, y_center, width, height]`` normalized → ``xyxy`` pixels."""
    b = as_boxes(xywh_norm) * _scale(size_wh)
    half = b[:, 2:] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def clip_xyxy(xyxy: npt.ArrayLike, size_wh: tuple[float, float]) -> FloatArray:
    """Clip ``xyxy`` pixel boxes to the image ``[0, w] × [0, h]``."""
    b = as_boxes(xyxy).copy()
    w, h = size_wh
    b[:, 0::2] = b[:, 0::2].clip(0, w)
    b[:, 1::2] = b[:, 1::2].clip(0, h)
    return b


def box_area(xyxy: npt.ArrayLike) -> FloatArray:
    """Areas of ``xyxy`` boxes, ``(N,)``; inverted boxes count as 0."""
    b = as_boxes(xyxy)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
