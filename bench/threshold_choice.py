"""Assumed thresholds: each label's own best-F1 confidence on validation, or shrunk towards the
pooled one by its evidence (``training.selection.label_thresholds``), scored on the test split.

    .venv/bin/python bench/threshold_choice.py MODEL_DIR [MODEL_DIR ...]

Each ``MODEL_DIR`` was trained on a shared set (``bccd`` or ``crops`` in the folder name select
BCCD or bee-crops, else the bee frames); its ``model.json`` names the validation and test images.
Both sets run once through the served path (ONNX Runtime, 2 threads, the card's decoding); then
the thresholds are chosen on validation with ``prior=0`` (own) and the default prior, and the
test P/R/F1 per label compared. Results: printed, and ``bench/results/thresholds.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from customlabels.core.model_card import Task
from customlabels.evaluation.metrics import classification_metrics, detection_metrics
from customlabels.inference.predictor import Predictor
from customlabels.training.selection import THRESHOLD_PRIOR, label_thresholds
from stored_models import REPO, report_per_model, split_records

RESULTS = REPO / "bench" / "results" / "thresholds.md"


def rows(folder: Path) -> list[str]:
    name = folder.name
    predictor = Predictor.load(folder, threads=2)
    card = predictor.card
    records = split_records(folder, ("validation", "test"))

    def scored(split: str) -> tuple[list[Any], list[Any]]:
        recs = records[split]
        return recs, [predictor.predict(Image.open(r.path).convert("RGB")) for r in recs]

    def metrics(data: tuple[list[Any], list[Any]], thresholds: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
        if card.task == Task.IMAGE_LEVEL_LABELS:
            return classification_metrics(
                *data, card.labels, thresholds=thresholds, multi_label=card.multi_label
            )
        return detection_metrics(*data, card.labels, thresholds=thresholds)

    val, test = metrics(scored("validation")), scored("test")
    own = label_thresholds(val.per_label, prior=0)
    shrunk = label_thresholds(val.per_label)
    a, b = metrics(test, own), metrics(test, shrunk)
    out = []
    for label in card.labels:
        x, y = a.per_label[label].at_threshold, b.per_label[label].at_threshold
        out.append(
            f"| {name} | {label} | {val.per_label[label].num_gt} | {own[label]:.2f} → "
            f"{shrunk[label]:.2f} | {a.per_label[label].num_gt} | {x.f1:.3f} → {y.f1:.3f} | "
            f"{x.precision:.2f}/{x.recall:.2f} → {y.precision:.2f}/{y.recall:.2f} |"
        )
    summary = f"micro F1 {a.f1:.3f} → {b.f1:.3f}"
    if card.task == Task.IMAGE_LEVEL_LABELS:
        summary += f", accuracy {a.accuracy:.3f} → {b.accuracy:.3f}"  # type: ignore[attr-defined]
    out.append(f"| {name} | *all* | | | | {summary} | |")
    return out


HEADER = [
    "# Assumed thresholds: own vs shrunk (bench/threshold_choice.py)",
    "",
    "Thresholds chosen on each model's validation split: the label's own best-F1 confidence "
    f"(unseen labels 0.5) → shrunk, `(n·own + {THRESHOLD_PRIOR:g}·pooled) / (n + "
    f"{THRESHOLD_PRIOR:g})` (unseen labels: pooled). Test split scored through ONNX Runtime "
    "(2 threads) at each.",
    "",
    "| model | label | validation n | threshold | test n | test F1 | test P/R |",
    "|---|---|---|---|---|---|---|",
]

if __name__ == "__main__":
    report_per_model(__doc__, HEADER, rows, RESULTS)
