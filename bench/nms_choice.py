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

from dataclasses import replace
from pathlib import Path

from PIL import Image

from customlabels.core.detections import Detections
from customlabels.evaluation.metrics import detection_metrics
from customlabels.inference.decode import FcosDecodeParams, decode_fcos
from customlabels.inference.predictor import Predictor
from customlabels.inference.preprocess import preprocess
from customlabels.training.selection import (
    DEFAULT_NMS_IOU,
    NMS_CANDIDATES,
    NMS_MARGIN,
    choose_nms_iou,
    selection_score,
)
from stored_models import REPO, report_per_model, split_records

RESULTS = REPO / "bench" / "results" / "nms-choice.md"


def rows(folder: Path) -> list[str]:
    predictor = Predictor.load(folder, threads=2)
    card = predictor.card
    decode = FcosDecodeParams.from_head(card.head)
    raw = {}
    for split, recs in split_records(folder, ("validation", "test")).items():
        outs = []
        for rec in recs:
            tensor, box = preprocess(Image.open(rec.path).convert("RGB"), card.input)
            outs.append((predictor.raw(tensor[None]), tensor.shape[1:], box))
        raw[split] = (recs, outs)

    def metrics(split: str, iou: float, thresholds: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
        recs, outs = raw[split]
        params = replace(decode, nms_iou=iou)
        preds = []
        for (cls_logits, regression, centerness), hw, box in outs:
            b, s, k = decode_fcos(cls_logits[0], regression[0], centerness[0], hw, params)
            preds.append(Detections(scores=s, class_ids=k, boxes=box.to_original(b)))
        return detection_metrics(recs, preds, card.labels, thresholds=thresholds)

    results = {}
    for iou in NMS_CANDIDATES:
        val = metrics("validation", iou)
        # Each label's own best-F1 threshold at this IoU: the NMS effect alone.
        test = metrics("test", iou, val.best_thresholds)
        results[iou] = (selection_score(val.per_label), test)
    chosen = choose_nms_iou({iou: score for iou, (score, _) in results.items()})
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


HEADER = [
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

if __name__ == "__main__":
    report_per_model(__doc__, HEADER, rows, RESULTS)
