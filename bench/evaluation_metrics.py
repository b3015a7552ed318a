"""How fast is ``detection_metrics`` (it runs inside training's validation loop)?

Baseline, measured in the same process on the same inputs: pycocotools' ``COCOeval``
(evaluate + accumulate, bbox, area "all", no cap on detections per image). Inputs: the first
N real ground-truth images of ``../shared/datasets/bees`` and synthetic, realistically shaped
predictions (jittered true boxes with high scores plus low-scoring background boxes).

    .venv/bin/python bench/evaluation_metrics.py   # writes bench/results/evaluation.md
"""

from __future__ import annotations

import contextlib
import io
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from customlabels.core.boxes import xyxy_to_ltwh
from customlabels.core.detections import Detections
from customlabels.evaluation import detection_metrics
from customlabels.formats.groundtruth import load_ground_truth

REPO = Path(__file__).resolve().parents[1]
BEES = REPO.parent / "shared" / "datasets" / "bees" / "output.manifest"
RUNS = 5


def predictions(gts, n_labels: int, per_image: int, seed: int) -> list[Detections]:
    rng = np.random.default_rng(seed)
    out = []
    for gt in gts:
        w, h = gt.size_wh or (640, 480)
        near = gt.boxes + rng.normal(0, 4, gt.boxes.shape)
        m = max(per_image - len(near), 0)
        xy = rng.random((m, 2)) * [w, h]
        bg = np.concatenate([xy, xy + rng.random((m, 2)) * [w, h] * 0.2 + 2], axis=1)
        boxes = np.concatenate([near, bg])[:per_image]
        ids = np.concatenate([gt.box_labels, rng.integers(0, n_labels, m)])[:per_image]
        scores = np.concatenate([rng.beta(5, 2, len(near)), rng.beta(1, 6, m)])[:per_image]
        out.append(Detections(scores=scores, class_ids=ids, boxes=boxes))
    return out


def coco(gts, preds, n_labels: int) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    for i, (gt, p) in enumerate(zip(gts, preds, strict=True)):
        images.append({"id": i + 1})
        for b, c in zip(xyxy_to_ltwh(gt.boxes).tolist(), gt.box_labels.tolist(), strict=True):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": c + 1,
                    "bbox": b,
                    "area": b[2] * b[3],
                    "iscrowd": 0,
                }
            )
        for b, c, s in zip(
            xyxy_to_ltwh(p.boxes).tolist(), p.class_ids.tolist(), p.scores.tolist(), strict=True
        ):
            dets.append({"image_id": i + 1, "category_id": c + 1, "bbox": b, "score": s})
    cats = [{"id": c + 1} for c in range(n_labels)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        gt_api = COCO()
        gt_api.dataset = {"images": images, "annotations": anns, "categories": cats}
        gt_api.createIndex()
        ev = COCOeval(gt_api, gt_api.loadRes(dets), "bbox")
        ev.params.maxDets = [1, 10, 100_000]
        ev.evaluate()
        ev.accumulate()
    return time.perf_counter() - start


def main() -> None:
    dataset = load_ground_truth(BEES)
    labels = dataset.labels.names
    rows = []
    for n_images, per_image in ((100, 100), (100, 300)):
        gts = dataset.images[:n_images]
        preds = predictions(gts, len(labels), per_image, seed=0)
        ours, theirs = [], []
        for _ in range(RUNS):
            start = time.perf_counter()
            detection_metrics(gts, preds, labels)
            ours.append(time.perf_counter() - start)
            theirs.append(coco(gts, preds, len(labels)))
        a, b = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
        rows.append(f"| {n_images} × {per_image} | {a:.0f} | {b:.0f} | {b / a:.1f}× |")
        print(rows[-1])
    text = "\n".join(
        [
            "# Evaluation: metric speed",
            "",
            "`detection_metrics` (greedy matching at 10 IoU thresholds, AP@0.5, AP@[.5:.95], PR "
            "curve, best-F1 thresholds) against pycocotools' `COCOeval.evaluate()+accumulate()` "
            f"on the same inputs; median of {RUNS} runs in one process on "
            f"{platform.machine()} cores shared with other jobs (contended: compare the ratio, "
            "not the absolute times).",
            "",
            "| images × predictions/image | customlabels ms | pycocotools ms | ratio |",
            "|---|---|---|---|",
            *rows,
            "",
            "Reproduce: `.venv/bin/python bench/evaluation_metrics.py`.",
            "",
        ]
    )
    (REPO / "bench" / "results" / "evaluation.md").write_text(text)


if __name__ == "__main__":
    main()
