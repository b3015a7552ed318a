"""Numpy anchors and decoding of the SSD head (``model.head: ssd``; no torch).

The anchors are those of TensorFlow's ``ssd_mobilenet_v2_coco`` (``MultipleGridAnchorGenerator``:
six maps, scales linear in ``[min_scale, max_scale]``, aspect ratios 1, 2, 1/2, 3, 1/3 plus one
box of the geometric mean of this scale and the next at ratio 1; the first map reduced to 3 boxes:
scale 0.1 at ratio 1, its scale at ratios 2 and 1/2). A box of scale ``s`` and ratio ``a`` is
``s·√a`` wide and ``s/√a`` high, in units of ``anchor_base`` pixels (300: the SSD's input, so at a
300² input these are the graph's anchors exactly; at a larger input they keep their size in
pixels, which is what the COCO box predictors learnt, so the fully convolutional SSD sees more
anchors, not larger ones). The anchor centres of a ``(gh, gw)`` map of an ``(H, W)`` input are
``((j + ½)·W/gw, (i + ½)·H/gh)``, as TensorFlow's.

The ONNX outputs (``docs/training.md``), over all anchors ``A`` in the graph's order (map by
map, row-major, the anchors of a location together):

- ``bbox_regression`` ``(A, 4)``: ``(dx, dy, dw, dh)`` box encodings (torchvision's order; the
  graph's is ``ty, tx, th, tw``) with weights ``box_weights`` (10, 10, 5, 5);
- ``cls_logits`` ``(A, K + 1)``: softmax logits, column 0 background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.errors import InvalidParameterError
from customlabels.inference.decode import FloatArray, classwise_nms

__all__ = ["SsdDecodeParams", "decode_ssd", "ssd_anchor_specs", "ssd_anchors"]

# ssd_mobilenet_v2_coco's anchor generator and box coder (checked against the frozen graph's
# constants in tests/training/test_ssd.py).
MIN_SCALE, MAX_SCALE = 0.2, 0.95
# 0.3333, not 1/3: the model's pipeline config (and so its graph) wrote it so.
ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 0.3333)
STRIDES = (16, 32, 64, 128, 256, 512)
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_CLIP = math.log(1000.0 / 16)  # torchvision's BoxCoder clamp of dw, dh


def ssd_anchor_specs(
    layers: int = len(STRIDES),
    min_scale: float = MIN_SCALE,
    max_scale: float = MAX_SCALE,
    aspect_ratios: Sequence[float] = ASPECT_RATIOS,
) -> list[list[tuple[float, float]]]:
    """``(scale, aspect ratio)`` of each box of a location, per map (TensorFlow's
    ``create_ssd_anchors`` with ``reduce_boxes_in_lowest_layer`` and interpolated ratio 1)."""
    scales = [min_scale + (max_scale - min_scale) * i / (layers - 1) for i in range(layers)]
    scales.append(1.0)
    specs = []
    for k in range(layers):
        if k == 0:
            specs.append([(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)])
        else:
            boxes = [(scales[k], a) for a in aspect_ratios]
            boxes.append((math.sqrt(scales[k] * scales[k + 1]), 1.0))
            specs.append(boxes)
    return specs


@dataclass(frozen=True)
class SsdDecodeParams:
    """Anchors and decoding settings, stored in ``model.json``'s ``head``.

    Attributes:
        strides: the maps' strides (a map of an ``H``-pixel input has ``ceil(H/s)`` rows).
        anchors: per map, ``(scale, aspect ratio)`` of the boxes of a location.
        anchor_base: pixels per unit of scale.
        box_weights: the box coder's ``(wx, wy, ww, wh)``.
        score_threshold: drop candidates below this softmax score (0–1).
        topk_per_level: keep at most this many candidates per map before NMS.
        nms_iou: IoU above which a lower-scored box of the same label is suppressed.
        max_detections: cap on detections per image after NMS.
    """

    strides: tuple[int, ...] = STRIDES
    anchors: tuple[tuple[tuple[float, float], ...], ...] = field(
        default_factory=lambda: tuple(tuple(m) for m in ssd_anchor_specs())
    )
    anchor_base: float = 300.0
    box_weights: tuple[float, float, float, float] = BOX_WEIGHTS
    score_threshold: float = 0.05
    topk_per_level: int = 1000
    nms_iou: float = 0.6
    max_detections: int = 1000

    @classmethod
    def from_head(cls, head: dict[str, Any]) -> SsdDecodeParams:
        """Read back :meth:`to_head` (a ``model.json`` ``head``); missing keys keep defaults."""
        d = cls()
        try:
            wx, wy, ww, wh = (float(v) for v in head.get("box_weights", d.box_weights))
            return cls(
                strides=tuple(int(s) for s in head.get("strides", d.strides)),
                anchors=tuple(
                    tuple((float(s), float(a)) for s, a in m)
                    for m in head.get("anchors", d.anchors)
                ),
                anchor_base=float(head.get("anchor_base", d.anchor_base)),
                box_weights=(wx, wy, ww, wh),
                score_threshold=float(head.get("score_threshold", d.score_threshold)),
                topk_per_level=int(head.get("topk_per_level", d.topk_per_level)),
                nms_iou=float(head.get("nms_iou", d.nms_iou)),
                max_detections=int(head.get("max_detections", d.max_detections)),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(
                f"model.json head: malformed SSD settings ({exc})"
            ) from None

    def to_head(self) -> dict[str, Any]:
        """The settings as JSON values."""
        return {
            "strides": list(self.strides),
            "anchors": [[list(box) for box in m] for m in self.anchors],
            "anchor_base": self.anchor_base,
            "box_weights": list(self.box_weights),
            "score_threshold": self.score_threshold,
            "topk_per_level": self.topk_per_level,
            "nms_iou": self.nms_iou,
            "max_detections": self.max_detections,
        }

    def grids(self, size_hw: tuple[int, int]) -> list[tuple[int, int]]:
        """``(rows, columns)`` of each map of an ``(H, W)`` input."""
        h, w = size_hw
        return [(-(-h // s), -(-w // s)) for s in self.strides]


def ssd_anchors(size_hw: tuple[int, int], params: SsdDecodeParams) -> FloatArray:
    """All anchors of an ``(H, W)`` input, ``(A, 4)`` ``xyxy`` input pixels, in output order."""
    h, w = size_hw
    out = []
    for (gh, gw), boxes in zip(params.grids(size_hw), params.anchors, strict=True):
        cy, cx = np.meshgrid((np.arange(gh) + 0.5) * h / gh, (np.arange(gw) + 0.5) * w / gw)
        cy, cx = cy.T.reshape(-1, 1), cx.T.reshape(-1, 1)  # row-major locations
        spec = np.asarray(boxes, dtype=np.float64)
        bw = spec[:, 0] * np.sqrt(spec[:, 1]) * params.anchor_base
        bh = spec[:, 0] / np.sqrt(spec[:, 1]) * params.anchor_base
        out.append(
            np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1).reshape(-1, 4)
        )
    return np.concatenate(out)


def decode_boxes(
    encodings: npt.NDArray[np.floating], anchors: FloatArray, weights: Sequence[float]
) -> FloatArray:
    """``(A, 4)`` ``(dx, dy, dw, dh)`` against ``(A, 4)`` ``xyxy`` anchors -> ``xyxy`` boxes
    (torchvision's ``BoxCoder.decode_single``)."""
    wx, wy, ww, wh = weights
    d = np.asarray(encodings, dtype=np.float64)
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + aw / 2, anchors[:, 1] + ah / 2
    cx, cy = d[:, 0] / wx * aw + ax, d[:, 1] / wy * ah + ay
    bw = np.exp(np.minimum(d[:, 2] / ww, _CLIP)) * aw
    bh = np.exp(np.minimum(d[:, 3] / wh, _CLIP)) * ah
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)


def decode_ssd(
    bbox_regression: npt.NDArray[np.floating],
    cls_logits: npt.NDArray[np.floating],
    size_hw: tuple[int, int],
    params: SsdDecodeParams,
    anchors: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """One image's raw outputs -> ``(boxes xyxy input pixels, scores 0–1, class_ids)``.

    Args:
        bbox_regression: ``(A, 4)``; cls_logits: ``(A, K + 1)`` (column 0 background).
        size_hw: the network input's ``(H, W)``.
        anchors: :func:`ssd_anchors` of ``size_hw`` (computed when not given).
    """
    if anchors is None:
        anchors = ssd_anchors(size_hw, params)
    logits = np.asarray(cls_logits, dtype=np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (e / e.sum(axis=1, keepdims=True))[:, 1:]
    num_classes = probs.shape[1]
    counts = [
        gh * gw * len(m) for (gh, gw), m in zip(params.grids(size_hw), params.anchors, strict=True)
    ]
    cands, start = [], 0
    for n in counts:  # top-k per map, as torchvision's SSD does over all anchors
        flat = probs[start : start + n].reshape(-1)
        cand = np.flatnonzero(flat > params.score_threshold)
        if cand.size > params.topk_per_level:
            cand = cand[np.argpartition(-flat[cand], params.topk_per_level - 1)]
            cand = cand[: params.topk_per_level]
        cands.append(cand + start * num_classes)
        start += n
    flat_idx = np.concatenate(cands) if cands else np.zeros(0, dtype=np.intp)
    anchor_idx, labels = np.divmod(flat_idx, num_classes)
    scores = probs.reshape(-1)[flat_idx]
    boxes = decode_boxes(
        np.asarray(bbox_regression)[anchor_idx], anchors[anchor_idx], params.box_weights
    )
    h, w = size_hw
    boxes = np.clip(boxes, 0.0, np.array([w, h, w, h], dtype=np.float64))
    labels = labels.astype(np.int64)
    keep = classwise_nms(boxes, scores, labels, params.nms_iou, params.max_detections)
    return boxes[keep], scores[keep], labels[keep]
