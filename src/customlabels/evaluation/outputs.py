"""Write everything ``customlabels evaluate`` produces into ``--out`` (default
``MODEL_DIR/evaluation/``) and record the test metrics in the model card.

Files: ``EvaluationSummary.json``, ``evaluation.manifest``, ``label_scores.json`` (every
prediction from a 1 % floor up, for threshold exploration), ``pr_curves.png``,
``f1_confidence.png``, ``reliability.png``, ``confusion_matrix.png`` (classification),
``report.html``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customlabels.core.model_card import ModelCard
from customlabels.evaluation.manifest import write_evaluation_manifest
from customlabels.evaluation.metrics import ClassificationMetrics
from customlabels.evaluation.plots import (
    plot_confusion,
    plot_f1_confidence,
    plot_pr_curves,
    plot_reliability,
)
from customlabels.evaluation.report import render_report
from customlabels.evaluation.run import Evaluation, PredictorLike, evaluate
from customlabels.evaluation.scores import SCORES_NAME, write_label_scores
from customlabels.evaluation.summary import card_test_metrics, evaluation_summary

__all__ = ["EvaluationOutput", "evaluate_model", "write_outputs"]

log = logging.getLogger(__name__)

SUMMARY_NAME = "EvaluationSummary.json"
MANIFEST_NAME = "evaluation.manifest"
REPORT_NAME = "report.html"


@dataclass
class EvaluationOutput:
    """An evaluation, its summary dict and the files written (``{kind: path}``)."""

    evaluation: Evaluation
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def write_outputs(
    ev: Evaluation,
    out_dir: Path,
    *,
    report: bool = True,
    max_images: int = 30,
    attribution: str | None = None,
) -> EvaluationOutput:
    """Write the summary, the evaluation manifest, the plots and (unless ``report=False``)
    ``report.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = evaluation_summary(ev)
    files: dict[str, Path] = {}
    summary_path = out_dir / SUMMARY_NAME
    summary_path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    files["summary"] = summary_path
    outcomes = ev.outcomes()
    files["manifest"] = write_evaluation_manifest(ev, out_dir / MANIFEST_NAME, outcomes)
    files["scores"] = write_label_scores(ev, out_dir / SCORES_NAME)
    name = ev.card.version_name or "model"
    plots = {
        "Precision–recall per label (IoU 0.5)"
        if ev.detection
        else "Precision–recall per label": plot_pr_curves(
            [("", ev.metrics)], out_dir / "pr_curves.png", title=name
        ),
        "F1 against confidence": plot_f1_confidence(ev.metrics, out_dir / "f1_confidence.png"),
    }
    if ev.reliability is not None:
        series = [("confidence" if ev.card.calibration else "raw score", ev.reliability)]
        if ev.raw_reliability is not None:
            series.append(("raw score", ev.raw_reliability))
        what = "share true positive (IoU 0.5)" if ev.detection else "share with the label"
        plots["Reliability: does a confidence mean what it says?"] = plot_reliability(
            series, out_dir / "reliability.png", title=f"{name}: reliability on test", what=what
        )
    if isinstance(ev.metrics, ClassificationMetrics):
        plots["Confusion matrix"] = plot_confusion(ev.metrics, out_dir / "confusion_matrix.png")
    files.update({p.stem: p for p in plots.values()})
    if report:
        files["report"] = render_report(
            ev,
            summary,
            plots,
            out_dir / REPORT_NAME,
            outcomes=outcomes,
            max_images=max_images,
            attribution=attribution,
        )
    return EvaluationOutput(ev, summary, files)


def _update_card(model_dir: Path, ev: Evaluation) -> None:
    card = ModelCard.load(model_dir)
    card.metrics = {**card.metrics, "test": card_test_metrics(ev)}
    card.save(model_dir)


def evaluate_model(
    model_dir: Path,
    test_manifest: Path,
    out_dir: Path | None = None,
    *,
    update_card: bool = True,
    report: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    threads: int = 1,
    max_images: int = 30,
    attribution: str | None = None,
    bucket_map: dict[str, Path] | None = None,
    predictor: PredictorLike | None = None,
) -> EvaluationOutput:
    """``customlabels evaluate``: predict the test manifest, score it, write every output and
    store the test metrics in ``model.json`` (``metrics.test``)."""
    model_dir = Path(model_dir)
    ev = evaluate(
        model_dir,
        Path(test_manifest),
        predictor=predictor,
        n_boot=n_boot,
        seed=seed,
        threads=threads,
        bucket_map=bucket_map,
    )
    out = write_outputs(
        ev,
        Path(out_dir) if out_dir is not None else model_dir / "evaluation",
        report=report,
        max_images=max_images,
        attribution=attribution,
    )
    if update_card:
        _update_card(model_dir, ev)
    log.info("evaluation written to %s", out.files["summary"].parent)
    return out
