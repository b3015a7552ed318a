"""Shared test helpers: the pycocotools reference and realistic random predictions."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from customlabels.core.boxes import ltwh_to_xyxy, xyxy_to_ltwh
from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections


def coco_reference(
    gts: Sequence[ImageRecord], preds: Sequence[Detections], n_labels: int
) -> dict[str, np.ndarray]:
    """pycocotools' per-label AP@0.5, AP@[.5:.95] and AR (-1 without ground truth)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    for i, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
        w, h = gt.size_wh or (10_000, 10_000)
        images.append({"id": i + 1, "width": w, "height": h})
        for box, c in zip(xyxy_to_ltwh(gt.boxes).tolist(), gt.box_labels.tolist(), strict=True):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": c + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
        assert pred.boxes is not None
        for box, c, s in zip(
            xyxy_to_ltwh(pred.boxes).tolist(),
            pred.class_ids.tolist(),
            pred.scores.tolist(),
            strict=True,
        ):
            dets.append({"image_id": i + 1, "category_id": c + 1, "bbox": box, "score": s})
    cats = [{"id": c + 1, "name": str(c)} for c in range(n_labels)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": anns, "categories": cats}
        coco.createIndex()
        res = coco.loadRes(dets)
        ev = COCOeval(coco, res, "bbox")
        ev.params.maxDets = [1, 10, 100_000]
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K)
    rec = ev.eval["recall"][:, :, 0, -1]  # (T, K)
    has = prec[0, 0, :] > -1
    ap = np.where(prec > -1, prec, np.nan).mean(axis=1)  # (T, K)
    return {
        "ap50": np.where(has, ap[0], -1),
        "ap50_95": np.where(has, ap.mean(axis=0), -1),
        "ar": np.where(has, rec.mean(axis=0), -1),
    }


def load_manifest_boxes(manifest: Path, limit: int) -> tuple[list[ImageRecord], list[str]]:
    """GT boxes of the first ``limit`` lines of a Ground Truth manifest (a minimal reader)."""
    records: list[ImageRecord] = []
    names: dict[str, int] = {}
    for line in manifest.read_text().splitlines()[:limit]:
        obj = json.loads(line)
        attr = next(k for k, v in obj.items() if isinstance(v, dict) and "annotations" in v)
        meta = obj[f"{attr}-metadata"]["class-map"]
        size = obj[attr]["image_size"][0]
        ann = obj[attr]["annotations"]
        ids = [names.setdefault(meta[str(a["class_id"])], len(names)) for a in ann]
        boxes = ltwh_to_xyxy([[a["left"], a["top"], a["width"], a["height"]] for a in ann])
        records.append(
            ImageRecord(
                obj["source-ref"],
                (size["width"], size["height"]),
                boxes=boxes,
                box_labels=np.array(ids, dtype=np.int64),
            )
        )
    return records, list(names)


def fake_predictions(
    gts: Sequence[ImageRecord], n_labels: int, per_image: int, seed: int
) -> list[Detections]:
    """Realistic-looking predictions: jittered true boxes (some relabelled, some duplicated)
    with high scores, plus background boxes with low scores, ``per_image`` in all."""
    rng = np.random.default_rng(seed)
    out = []
    for gt in gts:
        w, h = gt.size_wh or (640, 480)
        n = len(gt.boxes)
        keep = rng.random(n) < 0.85
        base = gt.boxes[keep]
        dup = base[rng.random(len(base)) < 0.3]
        near = np.concatenate([base, dup])
        size = np.concatenate([near[:, 2:] - near[:, :2]] * 2, axis=1)
        near = near + rng.normal(0, 0.08, near.shape) * size
        near_ids = np.concatenate([gt.box_labels[keep], gt.box_labels[keep][: len(dup)]])
        flip = rng.random(len(near_ids)) < 0.1
        near_ids = np.where(flip, rng.integers(0, n_labels, len(near_ids)), near_ids)
        near_scores = rng.beta(5, 2, len(near))
        m = max(per_image - len(near), 0)
        xy = rng.random((m, 2)) * [w, h]
        wh = rng.random((m, 2)) * [w, h] * 0.2 + 2
        bg = np.concatenate([xy, xy + wh], axis=1)
        boxes = np.concatenate([near, bg])[:per_image]
        ids = np.concatenate([near_ids, rng.integers(0, n_labels, m)])[:per_image]
        scores = np.concatenate([near_scores, rng.beta(1, 6, m)])[:per_image]
        out.append(Detections(scores=scores, class_ids=ids, boxes=boxes))
    return out
