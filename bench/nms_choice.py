"""What choosing the NMS IoU on validation buys: stored detectors re-decoded at each candidate.

    .venv/bin/python bench/nms_choice.py MODEL_DIR [MODEL_DIR ...]

Each ``MODEL_DIR`` is a detector trained on a shared set (its ``model.json`` names the dataset's
train/validation/test images; ``bccd`` in the folder name selects BCCD, else the bee frames).
The network runs once per validation and test image (ONNX Runtime, as served); the outputs are
then decoded at every IoU of ``NMS_CANDIDATES``. Per IoU: the validation selection score (AP@0.5
weighted by box count, what training maximises) and the test F1 / mAP@0.5 at thresholds chosen
on validation at that IoU. Results: printed, and ``bench/results/nms-choice.md``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from PIL import Image

from customlabels.core.detections import Detections
from customlabels.evaluation.metrics import detection_metrics
from customlabels.formats.groundtruth import load_ground_truth
from customlabels.inference.decode import decode_fcos
from customlabels.inference.predictor import Predictor
from customlabels.inference.preprocess import preprocess
from customlabels.training.tasks import DEFAULT_NMS_IOU, NMS_CANDIDATES, NMS_MARGIN, selection_score

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
RESULTS = REPO / "bench" / "results" / "nms-choice.md"


def rows(folder: Path) -> list[str]:
    dataset = "bccd" if "bccd" in folder.name else "bees"
    predictor = Predictor.load(folder, threads=2)
    card = predictor.card
    names = json.loads((folder / "model.json").read_text())["dataset"]["images"]
    records = load_ground_truth(DATASETS / dataset / "output.manifest").images
    raw = {}
    for split in ("validation", "test"):
        recs = [r for r in records if r.ref in set(names[split])]
        outs = []
        for rec in recs:
            tensor, box = preprocess(Image.open(rec.path).convert("RGB"), card.input)
            outs.append((predictor.raw(tensor[None]), tensor.shape[1:], box))
        raw[split] = (recs, outs)

    def metrics(split: str, iou: float, thresholds: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
        recs, outs = raw[split]
        params = replace(predictor._decode, nms_iou=iou)
        preds = []
        for (cls_logits, regression, centerness), hw, box in outs:
            b, s, k = decode_fcos(cls_logits[0], regression[0], centerness[0], hw, params)
            preds.append(Detections(scores=s, class_ids=k, boxes=box.to_original(b)))
        return detection_metrics(recs, preds, card.labels, thresholds=thresholds)

    results = {}
    for iou in NMS_CANDIDATES:
        val = metrics("validation", iou)
        test = metrics("test", iou, val.best_thresholds)
        results[iou] = (selection_score(val.per_label), test)
    chosen = max(results, key=lambda iou: results[iou][0])
    if results[chosen][0] < results[DEFAULT_NMS_IOU][0] + NMS_MARGIN:
        chosen = DEFAULT_NMS_IOU
    out = []
    for iou, (score, test) in results.items():
        per_label = " · ".join(
            f"{name} {m.at_threshold.f1:.3f}" for name, m in test.per_label.items()
        )
        mark = " **chosen**" if iou == chosen else ""
        out.append(
            f"| {folder.name} | {iou}{mark} | {score:.4f} | {test.f1:.3f} | {test.map50:.3f} "
            f"| {per_label} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", type=Path, nargs="+")
    args = parser.parse_args()
    lines = [
        "# NMS IoU chosen on validation (bench/nms_choice.py)",
        "",
        "Each stored model's validation and test images run once through ONNX Runtime (2 "
        "threads), then are decoded at each NMS IoU; test F1 at thresholds chosen on validation "
        f"at that IoU. The training run keeps {DEFAULT_NMS_IOU} unless another value beats its "
        f"validation score by {NMS_MARGIN}.",
        "",
        "| model | NMS IoU | validation score (AP@0.5 weighted by boxes) | test F1 | test mAP@0.5 "
        "| test F1 per label |",
        "|---|---|---|---|---|---|",
    ]
    for folder in args.models:
        lines += rows(folder)
        print("\n".join(lines[-len(NMS_CANDIDATES) :]), flush=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
