"""What a finished run leaves in its model folder besides ``model.onnx`` and ``config.yaml``:
the model card (``model.json``, scored on the test set through the served path) and the
training curves (``training_curves.png``). See ``docs/model-folder.md``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customlabels.core.dataset import Task
from customlabels.core.detections import Detections
from customlabels.core.model_card import InputSpec, ModelCard
from customlabels.evaluation.metrics import classification_metrics, detection_metrics
from customlabels.inference.predictor import Predictor
from customlabels.training.adapter import TaskAdapter
from customlabels.training.config import TrainConfig
from customlabels.training.loop import LoopResult
from customlabels.training.splits import Splits
from customlabels.training.views import load_image

__all__ = ["RunFacts", "now_iso", "plot_history", "write_card"]

VERSIONED = ("customlabels", "torch", "torchvision", "onnx", "onnxruntime", "numpy")


def now_iso() -> str:
    """UTC now, to the second (``model.json`` ``training.started_at`` / ``finished_at``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunFacts:
    """How the run went, for ``model.json`` ``training``.

    ``t_start``: the run's start, a ``time.monotonic()`` value (``training.seconds`` counts from
    it, test scoring included); ``started_at``: the same instant in UTC.
    """

    t_start: float
    cache_seconds: float
    views: int
    views_per_image: float
    device: str
    threads: int
    started_at: str
    onnx_max_abs_diff: float


def write_card(
    out_dir: Path,
    *,
    task: TaskAdapter,
    spec: InputSpec,
    config: TrainConfig,
    splits: Splits,
    result: LoopResult,
    facts: RunFacts,
    multi_label: bool,
    advice: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
) -> ModelCard:
    """Write ``model.json`` (usable at once), then score the test set through the served path
    (ONNX Runtime + numpy decoding at the card's thresholds) and write it again with the test
    metrics and the finish time.

    ``advice``: the data advice per label (``model.json`` ``dataset.advice``); ``calibration``:
    the fitted confidence maps (``model.json`` ``calibration``, see training/calibrate.py)."""
    labels = splits.dataset.labels.names
    card = ModelCard(
        task=task.card_task,
        labels=labels,
        input=spec,
        head=task.head_card(),
        thresholds=result.thresholds or dict.fromkeys(labels, 0.5),
        multi_label=multi_label,
        metrics={"validation": result.best_eval},
        training={
            "seconds": round(time.monotonic() - facts.t_start, 1),
            "cache_seconds": round(facts.cache_seconds, 1),
            "steps": result.steps,
            "best_step": result.best_step,
            "views_per_image": round(facts.views_per_image, 2),
            "views": facts.views,
            "device": facts.device,
            "seed": config.seed,
            "threads": facts.threads,
            "started_at": facts.started_at,
            "finished_at": "",
            "onnx_max_abs_diff": facts.onnx_max_abs_diff,
        },
        recipe=config.to_dict(),
        dataset={**splits.card_entry(), **({"advice": advice} if advice else {})},
        versions=_versions(),
        version_name=out_dir.name,
        calibration=calibration or {},
        tiling=task.chosen_tiling(),
    )
    card.save(out_dir)
    if splits.test:
        card.metrics["test"] = _test_metrics(out_dir, splits, card, facts.threads)
    card.training["seconds"] = round(time.monotonic() - facts.t_start, 1)
    card.training["finished_at"] = now_iso()
    card.save(out_dir)
    return card


def _test_metrics(out_dir: Path, splits: Splits, card: ModelCard, threads: int) -> dict[str, Any]:
    predictor = Predictor.load(out_dir, threads=max(1, threads))
    records = splits.test
    preds: list[Detections] = [predictor.predict(load_image(r)[0]) for r in records]
    if card.task == Task.OBJECT_LOCALIZATION:
        return detection_metrics(records, preds, card.labels, thresholds=card.thresholds).to_dict()
    return classification_metrics(
        records, preds, card.labels, thresholds=card.thresholds, multi_label=card.multi_label
    ).to_dict()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in VERSIONED:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "n/a"
    return out


def plot_history(out_dir: Path, history: list[dict[str, Any]]) -> None:
    """``training_curves.png``: the training losses and the validation scores by step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "classification", "bbox_regression", "bbox_ctrness"):
        if any(key in h for h in history):
            ax[0].plot(steps, [h.get(key, math.nan) for h in history], label=key)
    ax[0].set_xlabel("step")
    ax[0].set_title("training loss")
    ax[0].legend()
    ax[1].plot(steps, [h.get("val_score", math.nan) for h in history], label="selection score")
    ax[1].plot(steps, [h.get("val_map50", math.nan) for h in history], label="mAP@0.5")
    ax[1].set_xlabel("step")
    ax[1].set_title("validation")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out_dir / "training_curves.png", dpi=80)
    plt.close(fig)
