"""Calibrated confidence: expected calibration error (ECE) on the test split, raw score vs
calibrated confidence, for the SAME model (the calibration is fitted on its validation split).

    .venv/bin/python bench/calibration.py --work /tmp/cal --runs bees:240 bccd:240 bee-crops:240
    .venv/bin/python bench/calibration.py --models MODEL_DIR [MODEL_DIR ...]   # no training

``--runs NAME:SECONDS`` trains on a shared set with the automatic recipe and its automatic
group-aware 20 % test split (seed 0) within that budget; ``--models`` re-scores stored model
folders (``bccd`` or ``crops`` in the folder name select BCCD or bee-crops, else the bee frames).
The test split runs once through the served path (ONNX Runtime, 2 threads); the raw scores and
the calibrated confidences of those same predictions are binned (10 bins) and scored, with F1 at
the card's thresholds (on the calibrated scale) and the top confidence seen. Results: printed,
and ``bench/results/calibration.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from customlabels.evaluation.run import evaluate_predictions, run_predictions
from customlabels.inference.predictor import Predictor
from stored_models import DATASETS, REPO, split_records

RESULTS = REPO / "bench" / "results" / "calibration.md"
HEADER = [
    "| model | steps | test images | predictions | ECE raw → calibrated | validation ECE raw → "
    "calibrated (in sample) | top raw → calibrated confidence | F1 at card thresholds | "
    "labels with own map / pooled |",
    "|---|---|---|---|---|---|---|---|---|",
]


def row(folder: Path) -> str:
    predictor = Predictor.load(folder, threads=2)
    card = predictor.card
    records = split_records(folder, ("test",))["test"]
    preds, seconds = run_predictions(predictor, records)
    ev = evaluate_predictions(card, records, preds, seconds, n_boot=10)
    raw_rel, rel = ev.raw_reliability, ev.reliability
    assert rel is not None and raw_rel is not None, f"{folder}: no calibration in the card"
    top_raw = max(
        (float(p.raw_scores.max()) for p in preds if len(p) and p.raw_scores is not None),
        default=0.0,
    )
    top_cal = max((float(p.scores.max()) for p in preds if len(p)), default=0.0)
    val = card.calibration["validation_ece"]
    evidence = card.calibration["evidence"]
    own = sorted(k for k, v in evidence.items() if v["map"] == "own")
    pooled = sorted(k for k, v in evidence.items() if v["map"] != "own")
    return (
        f"| {folder.name} | {card.training.get('steps')} | {len(records)} | {rel.n} | "
        f"**{raw_rel.ece:.3f} → {rel.ece:.3f}** | {val['raw']:.3f} → "
        f"{val['calibrated_in_sample']:.3f} | {top_raw:.2f} → {top_cal:.2f} | "
        f"{ev.metrics.f1:.3f} | "
        f"{', '.join(own) or '—'} / {', '.join(pooled) or '—'} |"
    )


def train_one(name: str, seconds: float, work: Path) -> Path:
    from customlabels.training import train

    manifest = DATASETS / name / "output.manifest"
    out = work / f"{name}-{int(seconds)}"
    if not (out / "model.json").is_file():
        train(manifest, out, time_budget_s=seconds, seed=0, progress=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", nargs="*", default=[], help="NAME:SECONDS to train")
    parser.add_argument("--models", nargs="*", type=Path, default=[])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-calibration"))
    parser.add_argument("--note", default="", help="machine / load note for the table")
    args = parser.parse_args()
    folders = list(args.models)
    for spec in args.runs:
        name, seconds = spec.split(":")
        folders.append(train_one(name, float(seconds), args.work))
    lines = [
        "# Calibrated confidence: ECE on the test split, same model before (raw) and after",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()} with {os.cpu_count()} "
        f"cores. {args.note}",
        "",
        *HEADER,
    ]
    for folder in folders:
        line = row(folder)
        print(line, flush=True)
        lines.append(line)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
