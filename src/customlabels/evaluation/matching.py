"""Matching predicted boxes to ground-truth boxes, the way COCO (pycocotools) does it.

For one image and one label: predictions are visited highest confidence first (a stable sort,
so ties keep their input order); each takes the still-unmatched ground-truth box with the
highest IoU, provided that IoU is at least the threshold. Among ground-truth boxes with exactly
the same IoU the last one wins, as in pycocotools. All ten COCO IoU thresholds are matched in
one pass. IoU has no ``+1`` pixel convention (as pycocotools ≥ 2.0).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from customlabels.core.boxes import FloatArray

__all__ = ["IOU_THRESHOLDS", "assign_boxes", "box_iou", "match_boxes"]

#: COCO's IoU thresholds 0.50, 0.55, ..., 0.95; index 0 is the AP@0.5 threshold.
IOU_THRESHOLDS: FloatArray = np.linspace(0.5, 0.95, 10)


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise IoU of two sets of boxes.

    Args:
        a: float ``(N, 4)`` ``xyxy`` pixels.
        b: float ``(M, 4)`` ``xyxy`` pixels.

    Returns:
        float64 ``(N, M)``; 0 where the union is empty.
    """
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clip(0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def assign_boxes(
    pred_boxes: FloatArray,
    gt_boxes: FloatArray,
    iou_thresholds: FloatArray = IOU_THRESHOLDS,
) -> npt.NDArray[np.int64]:
    """Greedy matching of one image's predictions of one label to its ground truth.

    Args:
        pred_boxes: float ``(D, 4)`` ``xyxy`` pixels, already sorted by confidence, highest first.
        gt_boxes: float ``(G, 4)`` ``xyxy`` pixels.
        iou_thresholds: float ``(T,)`` IoU thresholds.

    Returns:
        int ``(T, D)``: the index of the ground-truth box each prediction matched at each IoU
        threshold, ``-1`` for a false positive.
    """
    n_thr, n_det, n_gt = len(iou_thresholds), len(pred_boxes), len(gt_boxes)
    assigned = np.full((n_thr, n_det), -1, dtype=np.int64)
    if n_det == 0 or n_gt == 0:
        return assigned
    ious = box_iou(pred_boxes, gt_boxes)
    # pycocotools compares against min(t, 1 - 1e-10) so that t = 1 stays reachable.
    thr = np.minimum(iou_thresholds, 1 - 1e-10)[:, None]
    matched = np.zeros((n_thr, n_gt), dtype=bool)
    # A prediction below the lowest threshold against every box is a false positive everywhere:
    # only the others need the sequential greedy step.
    for d in np.flatnonzero(ious.max(axis=1) >= thr.min()):
        row = ious[d]
        ok = (row[None, :] >= thr) & ~matched
        hit = ok.any(axis=1)
        if not hit.any():
            continue
        masked = np.where(ok, row[None, :], -1.0)
        best = n_gt - 1 - np.argmax(masked[:, ::-1], axis=1)  # last maximum, as pycocotools
        rows = np.flatnonzero(hit)
        matched[rows, best[rows]] = True
        assigned[rows, d] = best[rows]
    return assigned


def match_boxes(
    pred_boxes: FloatArray,
    gt_boxes: FloatArray,
    iou_thresholds: FloatArray = IOU_THRESHOLDS,
) -> npt.NDArray[np.bool_]:
    """Like :func:`assign_boxes`, but only whether each prediction is a true positive.

    Returns:
        bool ``(T, D)``: true positive at each IoU threshold.
    """
    return assign_boxes(pred_boxes, gt_boxes, iou_thresholds) >= 0
