"""Numpy decoding of ``model.onnx`` outputs (no torch): FCOS boxes + NMS, classifier scores.

The ONNX detector returns raw per-location values, concatenated over the pyramid levels in the
order of ``head["strides"]``, row-major inside a level (see ``docs/training.md``):

- ``cls_logits`` ``(L, K)``: per-label logits (sigmoid);
- ``bbox_regression`` ``(L, 4)``: ltrb distances, in units of the level's anchor size;
- ``centerness`` ``(L, 1)``: centerness logits.

A location ``i`` of a level with stride ``s`` on a ``(H/s, W/s)`` grid sits at input pixel
``((i mod W/s)·s, (i div W/s)·s)``; its box is that point minus/plus ``ltrb · anchor_size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FcosDecodeParams", "classwise_nms", "decode_classifier", "decode_fcos", "nms"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FcosDecodeParams:
    """Decoding settings, stored in ``model.json``'s ``head``.

    Attributes:
        strides: pyramid strides, in output order.
        anchor_sizes: anchor size per level (regression unit), pixels.
        score_threshold: drop candidates below this combined score (0–1).
        topk_per_level: keep at most this many candidates per level before NMS.
        nms_iou: IoU above which a lower-scored box of the same label is suppressed.
        max_detections: cap on detections per image after NMS.
    """

    strides: tuple[int, ...] = (8, 16, 32)
    anchor_sizes: tuple[int, ...] = (8, 16, 32)
    score_threshold: float = 0.05
    topk_per_level: int = 1000
    nms_iou: float = 0.6
    max_detections: int = 1000

    @classmethod
    def from_head(cls, head: dict[str, object]) -> FcosDecodeParams:
        def ints(key: str, default: tuple[int, ...]) -> tuple[int, ...]:
            value = head.get(key, default)
            return tuple(int(v) for v in value) if isinstance(value, Sequence) else default

        return cls(
            strides=ints("strides", cls.strides),
            anchor_sizes=ints("anchor_sizes", cls.anchor_sizes),
            score_threshold=float(head.get("score_threshold", cls.score_threshold)),  # type: ignore[arg-type]
            topk_per_level=int(head.get("topk_per_level", cls.topk_per_level)),  # type: ignore[call-overload]
            nms_iou=float(head.get("nms_iou", cls.nms_iou)),  # type: ignore[arg-type]
            max_detections=int(head.get("max_detections", cls.max_detections)),  # type: ignore[call-overload]
        )


def _sigmoid(x: npt.NDArray[np.floating]) -> FloatArray:
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression; returns kept indices, highest score first.

    Args:
        boxes: ``(N, 4)`` ``xyxy``.
        scores: ``(N,)``.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)


def classwise_nms(
    boxes: FloatArray,
    scores: FloatArray,
    labels: npt.NDArray[np.int64],
    iou_threshold: float,
    max_detections: int,
) -> npt.NDArray[np.intp]:
    """Class-aware greedy NMS: kept indices, highest score first, at most ``max_detections``.

    Args:
        boxes: ``(N, 4)`` ``xyxy`` (any pixel frame); scores: ``(N,)``; labels: ``(N,)``.
    """
    if len(scores) == 0:
        return np.zeros(0, dtype=np.intp)
    # The offset trick: shifted by label, boxes of different labels never overlap.
    extent = float(np.abs(boxes).max()) * 4.0 + 1.0
    return nms(boxes + labels[:, None] * extent, scores, iou_threshold)[:max_detections]


def decode_fcos(
    cls_logits: npt.NDArray[np.floating],
    bbox_regression: npt.NDArray[np.floating],
    centerness: npt.NDArray[np.floating],
    size_hw: tuple[int, int],
    params: FcosDecodeParams,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Decode one image's raw outputs into ``(boxes xyxy input pixels, scores 0–1, class_ids)``.

    Args:
        cls_logits: ``(L, K)``; bbox_regression: ``(L, 4)``; centerness: ``(L, 1)``.
        size_hw: the network input's ``(H, W)`` (multiples of the largest stride).
    """
    height, width = size_hw
    num_classes = cls_logits.shape[-1]
    all_boxes, all_scores, all_labels = [], [], []
    start = 0
    for stride, anchor in zip(params.strides, params.anchor_sizes, strict=True):
        gh, gw = -(-height // stride), -(-width // stride)
        n = gh * gw
        logits = cls_logits[start : start + n]
        # score = sqrt(p_class * p_centerness), as torchvision's FCOS.
        scores = np.sqrt(_sigmoid(logits) * _sigmoid(centerness[start : start + n]))
        flat = scores.reshape(-1)
        cand = np.flatnonzero(flat > params.score_threshold)
        if cand.size > params.topk_per_level:
            top = np.argpartition(-flat[cand], params.topk_per_level - 1)[: params.topk_per_level]
            cand = cand[top]
        loc, label = np.divmod(cand, num_classes)
        cy, cx = np.divmod(loc, gw)
        centre = np.stack([cx * stride, cy * stride], axis=1).astype(np.float64)
        reg = np.asarray(bbox_regression[start : start + n][loc], dtype=np.float64) * anchor
        boxes = np.concatenate([centre - reg[:, :2], centre + reg[:, 2:]], axis=1)
        all_boxes.append(boxes)
        all_scores.append(flat[cand])
        all_labels.append(label.astype(np.int64))
        start += n
    boxes = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4))
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    labels = np.concatenate(all_labels) if all_labels else np.zeros(0, dtype=np.int64)
    if len(scores) == 0:
        return boxes.reshape(0, 4), scores, labels
    keep = classwise_nms(boxes, scores, labels, params.nms_iou, params.max_detections)
    return boxes[keep], scores[keep], labels[keep]


def decode_classifier(logits: npt.NDArray[np.floating], multi_label: bool) -> FloatArray:
    """``(K,)`` logits -> per-label confidences 0–1 (sigmoid if multi-label, else softmax)."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    if multi_label:
        return _sigmoid(x)
    e = np.exp(x - x.max())
    return e / e.sum()
