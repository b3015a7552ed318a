"""``label_scores.json``: every test prediction of each label from a low confidence floor up,
with its true-positive flag, so a threshold below the assumed one can be explored (and a
precision–recall curve drawn) without running the model again.

``evaluation.manifest`` keeps only the predictions at or above each label's assumed threshold
(its boxes are what the model returns when served); this file is its complement for threshold
exploration, and nothing else reads it. Layout::

    {"version": 1, "floor": 0.01,
     "labels": {"bee": {"threshold": 0.42, "num_gt": 17,
                        "scores": [[0.97, 1], [0.88, 0], ...]}}}

``scores``: ``[confidence (0–1), 1 if a true positive at IoU 0.5 (detection) else 0]``,
highest confidence first; ``num_gt``: ground-truth boxes (or positive images) of the label.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from customlabels.evaluation.run import Evaluation

__all__ = ["SCORES_NAME", "SCORE_FLOOR", "write_label_scores"]

SCORES_NAME = "label_scores.json"
#: Predictions below this confidence (0–1) are not stored: a threshold under 1 % is never useful.
#: (A detector's decoder already drops boxes under its own score floor, 5 % by default.)
SCORE_FLOOR = 0.01


def write_label_scores(ev: Evaluation, path: Path, floor: float = SCORE_FLOOR) -> Path:
    """Write every prediction with ``confidence >= floor`` per label (see the module docstring)."""
    labels: dict[str, object] = {}
    for name, m in ev.metrics.per_label.items():
        scores, is_tp = m.matches.scores, m.matches.is_tp[0]
        order = np.argsort(-scores, kind="stable")
        kept = [
            [round(float(scores[i]), 6), int(bool(is_tp[i]))] for i in order if scores[i] >= floor
        ]
        labels[name] = {
            "threshold": round(float(ev.thresholds[name]), 6),
            "num_gt": int(m.num_gt),
            "scores": kept,
        }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"version": 1, "floor": floor, "labels": labels}) + "\n")
    tmp.replace(path)
    return path
