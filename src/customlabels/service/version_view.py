"""A model version as a person follows it: training progress (phase, step, elapsed, ETA,
validation score, the loss curve so far, the log's tail) and its evaluation summary; and
cancelling its training.

Read from the files training writes as it goes (``model/metrics.csv`` after each logged step,
``train.stdout.log``) and from ``model/evaluation/EvaluationSummary.json``; nothing here imports
torch.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from customlabels.errors import ResourceInUseError
from customlabels.service.catalog import VersionStatus
from customlabels.service.context import Context, now
from customlabels.service.expert_config import EXPERT_CONFIG_NAME
from customlabels.service.versions import get_version

__all__ = ["cancel_training", "version_details"]

_LOG_TAIL_LINES = 40


def _history(model_dir: Path) -> list[dict[str, float]]:
    path = model_dir / "metrics.csv"
    if not path.is_file():
        return []
    rows: list[dict[str, float]] = []
    with path.open(newline="") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, float] = {}
            for key in ("step", "elapsed_s", "loss", "val_score"):
                try:
                    value = float(raw.get(key) or "nan")
                except ValueError:
                    value = math.nan
                if math.isfinite(value):
                    row[key] = value
            if "step" in row:
                rows.append(row)
    return rows


def _tail(path: Path) -> str:
    if not path.is_file():
        return ""
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 64 * 1024))
        text = fh.read().decode("utf-8", "replace")
    # tqdm redraws its bar with carriage returns: keep each line's last state
    lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _phase(status: str, message: str, history: list[dict[str, float]]) -> str:
    if status != VersionStatus.TRAINING_IN_PROGRESS.value:
        return status
    if message.startswith("queued"):
        return "queued"
    if message.startswith("evaluating"):
        return "evaluating on the test set"
    return "training" if history else "preparing (reading images, caching features)"


def version_details(ctx: Context, version_arn: str) -> dict[str, Any]:
    """Status, progress and evaluation of a version.

    Returns:
        ``{"status", "message", "phase", "budget_s", "elapsed_s", "eta_s", "step",
        "val_score", "history" [{step, elapsed_s, loss, val_score}], "log",
        "evaluation" (the EvaluationSummary dict or None), "min_units", "expert_config" (the
        YAML text the version was trained with, or None)}``; seconds throughout.
    """
    with ctx.catalog.session() as s:
        row = get_version(s, version_arn)
        status, message = row.status, row.status_message
        model_dir, budget = Path(row.model_dir), row.time_budget_s
        started, ended, units = row.training_started_at, row.training_end, row.min_units
    history = _history(model_dir)
    training = status == VersionStatus.TRAINING_IN_PROGRESS.value
    elapsed = ((ended or now()) - started) if started else 0.0
    eta = max(0.0, (budget or 0.0) - elapsed) if training and started and budget else None
    scores = [h["val_score"] for h in history if "val_score" in h]
    summary_path = model_dir / "evaluation" / "EvaluationSummary.json"
    evaluation = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    return {
        "status": status,
        "message": message,
        "phase": _phase(status, message, history),
        "budget_s": budget,
        "elapsed_s": elapsed,
        "eta_s": eta,
        "step": int(history[-1]["step"]) if history else 0,
        "val_score": scores[-1] if scores else None,
        "history": history,
        "log": _tail(model_dir.parent / "train.stdout.log"),
        "evaluation": evaluation,
        "min_units": units,
        "expert_config": _read(model_dir.parent / EXPERT_CONFIG_NAME),
    }


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def cancel_training(ctx: Context, version_arn: str) -> dict[str, Any]:
    """Cancel a version's training (queued or running): it ends TRAINING_FAILED with
    "cancelled by the user".

    Raises:
        ResourceInUseError: the version is not training.
    """
    with ctx.catalog.session() as s:
        row = get_version(s, version_arn)
        status, version_id = row.status, row.id
    if status != VersionStatus.TRAINING_IN_PROGRESS.value:
        raise ResourceInUseError(f"{version_arn} is {status}, not training: nothing to cancel")
    ctx.trainer.cancel(version_id)
    return {"Status": "CANCELLING"}
