"""Where a bee detector's errors are: held-out and training images scored the same way.

    .venv/bin/python bench/detector_errors.py MODEL_DIR [--label bee]

``MODEL_DIR`` is a model folder trained on ``../shared/datasets/bees`` (its ``model.json`` lists
the train/validation/test images). For each split: the label's P/R/F1 at the model's own
threshold (``detection_metrics``), the missed boxes by kind — a same-label prediction at IoU
0.2–0.5 (loose or shifted box), another label at IoU ≥ 0.5 (confusion), nothing — and recall by
box side on the served input. Results: printed, and ``bench/results/detector-errors.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from customlabels.core.model_card import ModelCard
from customlabels.evaluation.matching import box_iou
from customlabels.evaluation.metrics import detection_metrics
from customlabels.formats.groundtruth import load_ground_truth
from customlabels.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO.parent / "shared" / "datasets" / "bees" / "output.manifest"
RESULTS = REPO / "bench" / "results" / "detector-errors.md"
SIDES = [0, 16, 24, 32, 48, 64, 128, 10_000]


def analyse(folder: Path, split: str, label: str, limit: int) -> list[str]:
    card = ModelCard.load(folder)
    predictor = Predictor.load(folder, threads=2)
    names = set(json.loads((folder / "model.json").read_text())["dataset"]["images"][split])
    records = [r for r in load_ground_truth(MANIFEST).images if r.ref in names][:limit]
    preds = [predictor.predict(Image.open(r.path).convert("RGB")) for r in records]
    m = detection_metrics(records, preds, card.labels, thresholds=card.thresholds).per_label
    k = card.labels.index(label)
    kinds = {"loose or shifted": 0, "other label": 0, "nothing": 0}
    found, total = np.zeros(len(SIDES) - 1), np.zeros(len(SIDES) - 1)
    for rec, det in zip(records, preds, strict=True):
        keep = det.scores >= np.array([card.thresholds[card.labels[c]] for c in det.class_ids])
        boxes, classes = det.boxes[keep], det.class_ids[keep]
        gt = rec.boxes[rec.box_labels == k]
        if not len(gt):
            continue
        iou = box_iou(gt, boxes) if len(boxes) else np.zeros((len(gt), 0))
        scale = max(card.input.width, card.input.height) / max(rec.size_wh or (1, 1))
        sides = np.sqrt((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])) * scale
        same = iou[:, classes == k] if len(boxes) else iou
        other = iou[:, classes != k] if len(boxes) else iou
        hit = same.max(axis=1) >= 0.5 if same.shape[1] else np.zeros(len(gt), bool)
        bins = np.clip(np.searchsorted(SIDES, sides, side="right") - 1, 0, len(SIDES) - 2)
        np.add.at(total, bins, 1)
        np.add.at(found, bins, hit)
        for i in np.where(~hit)[0]:
            if same.shape[1] and same[i].max() >= 0.2:
                kinds["loose or shifted"] += 1
            elif other.shape[1] and other[i].max() >= 0.5:
                kinds["other label"] += 1
            else:
                kinds["nothing"] += 1
    s = m[label].at_threshold
    recall = " · ".join(
        f"{SIDES[i]}–{SIDES[i + 1] if SIDES[i + 1] < 10_000 else '∞'} px: "
        f"{found[i] / total[i]:.2f} (n={int(total[i])})"
        for i in range(len(total))
        if total[i]
    )
    return [
        f"| {split} ({len(records)} images) | {s.f1:.3f} | {s.precision:.2f} / {s.recall:.2f} | "
        + " · ".join(f"{name} {n}" for name, n in kinds.items())
        + f" | {recall} |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--label", default="bee")
    parser.add_argument("--limit", type=int, default=200, help="images per split at most")
    args = parser.parse_args()
    lines = [
        f"# Detector errors (bench/detector_errors.py {args.model.name})",
        "",
        f"Label `{args.label}` at the model's own threshold; recall by box side on the served "
        "input.",
        "",
        "| split | F1 | P / R | missed boxes by kind | recall by box side |",
        "|---|---|---|---|---|",
    ]
    for split in ("train", "test"):
        lines += analyse(args.model, split, args.label, args.limit)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
