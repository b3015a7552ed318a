"""Image -> ONNX input tensor, as ``model.json``'s ``input`` says (numpy + Pillow, no torch).

Training uses the same function for its validation images, so what is validated is what is
served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from customlabels.core.model_card import InputSpec
from customlabels.errors import InvalidParameterError

__all__ = ["Letterbox", "preprocess"]


@dataclass(frozen=True)
class Letterbox:
    """Where the original image sits in the input tensor.

    ``scale_xy``: input pixels per original pixel along x and y; the content occupies
    ``[0, content_wh[0]) × [0, content_wh[1])`` of the input (padding right/bottom).
    """

    scale_xy: tuple[float, float]
    content_wh: tuple[int, int]
    original_wh: tuple[int, int]

    def to_original(self, boxes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``xyxy`` input pixels -> ``xyxy`` original pixels, clipped to the image."""
        sx, sy = self.scale_xy
        out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / np.array([sx, sy, sx, sy])
        w, h = self.original_wh
        return np.clip(out, 0.0, np.array([w, h, w, h], dtype=np.float64))


def preprocess(image: Image.Image, spec: InputSpec) -> tuple[npt.NDArray[np.float32], Letterbox]:
    """RGB image -> float32 ``(3, H, W)`` normalized tensor and its :class:`Letterbox`.

    ``letterbox``: scale to fit ``spec.width × spec.height`` keeping the aspect ratio, pad
    right/bottom with ``spec.pad_value`` (a 0–255 pixel value); ``stretch``: resize exactly.
    """
    w, h = image.size
    if spec.resize == "letterbox":
        scale = min(spec.width / w, spec.height / h)
        cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
        scale_xy = (cw / w, ch / h)
    elif spec.resize == "stretch":
        cw, ch = spec.width, spec.height
        scale_xy = (cw / w, ch / h)
    else:
        raise InvalidParameterError(
            f"input.resize: expected 'letterbox' or 'stretch', got {spec.resize!r}"
        )
    resized = image.convert("RGB").resize((cw, ch), Image.Resampling.BILINEAR)
    canvas = np.full((spec.height, spec.width, 3), spec.pad_value, dtype=np.float32)
    canvas[:ch, :cw] = np.asarray(resized, dtype=np.float32)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    tensor = ((canvas - mean) / std).transpose(2, 0, 1)
    return np.ascontiguousarray(tensor), Letterbox(scale_xy, (cw, ch), (w, h))
