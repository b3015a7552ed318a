"""The automatic recipe: training settings chosen from the dataset and the time budget.

Only the fields the user did not set (in ``--config``) are chosen here:

- ``input.width/height``: the served input. The median object should be about
  ``TARGET_OBJECT_PX`` pixels on the network input (FCOS's finest level has stride 8), within
  ``[MIN_SIDE, MAX_SIDE]`` for the long side, with the dataset's typical aspect ratio.
  With ``model.head: ssd`` the cap is ``SSD_MAX_SIDE``: the SSD's smallest anchors are 30 px
  (0.1 × its 300-px input) and its next ones 60 px, so the median object should reach ~40 px
  even on the bee frames (1728: bees ≈ 40 px; 1280 leaves them at ≈ 29 px). The SSD is fully
  convolutional: a larger input gives more anchors of the same pixel sizes.
- ``model.backbone``: ``mobilenetv2-ssd-coco`` with ``model.head: ssd`` (the head is its own).
- ``input.crop``: training crops (320 px) of views of that size: small objects are trained at
  the resolution they are detected at, on crops, while detection runs on the whole frame.
- ``augment.scale_min/max``: wider scale jitter for small objects (scale diversity).
- ``augment.views_per_image``: as many augmented views as about a third of the budget allows
  (computed pass over the data by pass, so a contended CPU gives fewer), under a memory cap.
- ``optim.steps`` (when null) is set later from the measured step time (``budget.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from customlabels.core.dataset import ImageRecord, Task
from customlabels.errors import ConfigError
from customlabels.training.config import BackboneName, HeadName, TaskChoice, TrainConfig

__all__ = ["CACHE_SHARE", "DatasetSummary", "auto_config", "is_set", "max_views", "summarize"]

TARGET_OBJECT_PX = 40.0
# 1280 (not 960): bee F1 0.708 vs 0.657, bee AP@0.5 0.716 vs 0.633 at 15 minutes, 9.4 ms per
# 0.1 MP in ONNX Runtime (bench/results/training.md).
MIN_SIDE, MAX_SIDE = 384, 1280
SSD_MAX_SIDE = 1728
CLASSIFIER_SIDE = 224
CACHE_SHARE = 0.35  # of the time budget spent computing cached views, at most
CACHE_MAX_BYTES = 3 * 1024**3
MAX_VIEWS = 32


@dataclass(frozen=True)
class DatasetSummary:
    """Statistics the recipe uses (training part only)."""

    images: int
    boxes: int
    median_aspect: float  # width / height
    median_rel_box: float  # sqrt(box area) / longer image side; nan without boxes
    task: Task


def summarize(records: Sequence[ImageRecord], task: Task) -> DatasetSummary:
    aspects, rel = [], []
    for rec in records:
        if rec.size_wh:
            w, h = rec.size_wh
            aspects.append(w / h)
            if len(rec.boxes):
                side = np.sqrt(
                    np.clip(
                        (rec.boxes[:, 2] - rec.boxes[:, 0]) * (rec.boxes[:, 3] - rec.boxes[:, 1]),
                        0,
                        None,
                    )
                )
                rel.extend((side / max(w, h)).tolist())
    return DatasetSummary(
        images=len(records),
        boxes=sum(len(r.boxes) for r in records),
        median_aspect=float(np.median(aspects)) if aspects else 1.0,
        median_rel_box=float(np.median(rel)) if rel else math.nan,
        task=task,
    )


def _round32(x: float) -> int:
    return max(64, round(x / 32.0) * 32)


def _ceil32(x: float) -> int:
    return max(64, math.ceil(x / 32.0 - 1e-9) * 32)


def is_set(user: dict[str, Any], dotted: str) -> bool:
    node: Any = user
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def auto_config(
    base: TrainConfig, user: dict[str, Any], summary: DatasetSummary
) -> tuple[TrainConfig, list[str]]:
    """Fill the fields the user did not set; returns a resolved copy and human-readable notes."""
    notes: list[str] = []
    changes: dict[str, Any] = {}

    def choose(dotted: str, value: Any) -> None:
        if not is_set(user, dotted):
            changes[dotted] = value

    task = base.task
    if task == TaskChoice.AUTO:
        detector = summary.task == Task.OBJECT_LOCALIZATION
        task = TaskChoice.DETECTION if detector else TaskChoice.CLASSIFICATION
        changes["task"] = task.value
    if task == TaskChoice.CLASSIFICATION:
        choose("input.width", CLASSIFIER_SIDE)
        choose("input.height", CLASSIFIER_SIDE)
        choose("augment.scale_min", 0.6)  # RandomResizedCrop area fraction
        choose("optim.lr", 0.003)
        choose("optim.batch_size", 64)
        choose("augment.vflip", 0.0)
        c = base.resolved(changes)
        notes.append(f"classifier at {c.input.width}×{c.input.height}")
        return c, notes
    max_side = MAX_SIDE
    if base.model.head == HeadName.SSD:
        ssd = BackboneName.MOBILENETV2_SSD_COCO
        if is_set(user, "model.backbone") and base.model.backbone != ssd:
            raise ConfigError(
                f"model.head: ssd expected model.backbone: {ssd.value} (or unset), "
                f"got {base.model.backbone.value}"
            )
        changes["model.backbone"] = ssd.value
        max_side = SSD_MAX_SIDE
    rel = summary.median_rel_box if math.isfinite(summary.median_rel_box) else 0.1
    long_side = min(max_side, max(MIN_SIDE, _round32(TARGET_OBJECT_PX / max(rel, 1e-3))))
    aspect = summary.median_aspect
    # The short side is rounded up so the letterboxed image fills the long side.
    if aspect >= 1:
        w, h = long_side, _ceil32(long_side / aspect)
    else:
        w, h = _ceil32(long_side * aspect), long_side
    choose("input.width", w)
    choose("input.height", h)
    width = changes.get("input.width", base.input.width)
    height = changes.get("input.height", base.input.height)
    notes.append(
        f"median object {rel * 100:.1f}% of the image side -> input "
        f"{width}×{height} (≈{rel * max(width, height):.0f} px)"
    )
    choose("input.crop", min(320, _round32(max(width, height))))
    if rel * max(width, height) < 32:
        choose("augment.scale_max", 1.8)
        choose("augment.scale_min", 0.7)
        notes.append("small objects: scale jitter 0.7–1.8 on 320-px crops of the scaled frames")
    return base.resolved(changes), notes


def max_views(c: TrainConfig, n_images: int) -> int:
    """Upper bound on cached views per image from the memory cap (the time share decides
    how many are actually computed, pass by pass, in ``views.build_views``)."""
    # float16 cached maps of Lite0: C3, C4, C5 hold 40/64, 112/256, 320/1024 values per input
    # pixel; fine-tuned stages are not cached.
    per_level = (40 / 64, 112 / 256, 320 / 1024)
    levels = 3 - c.model.finetune_stages
    if c.task == TaskChoice.CLASSIFICATION:
        # One pooled float32 vector, or the float16 map the fine-tuned stages start from.
        per_view = (
            2.0 * per_level[levels - 1] * c.input.width * c.input.height
            if levels < 3
            else 4.0 * 1280
        )
    else:
        per_pixel = sum(per_level[:levels])
        view_px = c.input.width * c.input.height * mean_area(c)
        if c.input.view_window:
            view_px = min(view_px, c.input.view_window**2)
        per_view = 2.0 * per_pixel * view_px
    return max(1, min(MAX_VIEWS, int(CACHE_MAX_BYTES / max(1.0, n_images * per_view))))


def mean_area(c: TrainConfig) -> float:
    """E[factor²] of the log-uniform scale jitter: the mean cost of a view relative to view 0."""
    lo, hi = c.augment.scale_min, c.augment.scale_max
    if hi <= lo:
        return hi * hi
    return (hi * hi - lo * lo) / (2 * math.log(hi / lo))
