"""The interface between the driver and a task: what an adapter is built from and what it does.

An adapter builds its feature cache (:meth:`TaskAdapter.build`), owns the trainable module,
draws a batch from the cache and returns the losses, evaluates on the validation split, and
builds the full module that is exported to ONNX. The adapters are in ``detector_task.py``,
``ssd_task.py`` and ``classifier_task.py``, looked up by task (and detector head) in ``tasks.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from customlabels.core.dataset import ImageRecord, Task
from customlabels.core.detections import Detections
from customlabels.core.model_card import InputSpec, TilingSpec
from customlabels.training.backbone import Backbone
from customlabels.training.config import TrainConfig
from customlabels.training.selection import Evaluation

__all__ = ["TaskAdapter", "TaskInputs", "param_groups", "using_module"]


@dataclass(frozen=True)
class TaskInputs:
    """What an adapter is built from.

    Attributes:
        config: the resolved config (``augment.views_per_image`` is the number of views to
            cache per training image).
        spec: the served input; validation images are preprocessed exactly as served.
        multi_label: classification with per-label sigmoid (some image has two labels).
        cache_deadline: a ``time.monotonic()`` value at which caching views stops, or None
            (all views: deterministic).
    """

    config: TrainConfig
    backbone: Backbone
    labels: list[str]
    train: list[ImageRecord]
    validation: list[ImageRecord]
    spec: InputSpec
    device: torch.device
    multi_label: bool
    cache_deadline: float | None = None

    @property
    def cached_levels(self) -> int:
        """Backbone levels cached once; the fine-tuned stages above them run every step."""
        return 3 - self.config.model.finetune_stages


class TaskAdapter(Protocol):
    """One task's training, validation and export (see the module docstring).

    Class attributes: ``card_task`` (the ``model.json`` task) and ``resize`` (how the served
    input is made: ``letterbox`` or ``stretch``).
    """

    card_task: ClassVar[Task]
    resize: ClassVar[str]
    module: nn.ModuleDict

    @classmethod
    def build(cls, inputs: TaskInputs) -> tuple[TaskAdapter, int]:
        """Cache the training views' features; returns the adapter and the views cached."""
        ...

    def step_cap(self, views: int) -> int | None:
        """At most this many steps in a budgeted run (None: the budget decides)."""
        ...

    def decoding_seconds(self, t_eval: float) -> float:
        """Seconds :meth:`tune_decoding` will take after training (``t_eval``: one validation)."""
        ...

    def param_groups(self) -> list[dict[str, Any]]:
        """AdamW parameter groups; a group's ``lr_scale`` multiplies the scheduled lr."""
        ...

    def losses(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """The losses of one batch drawn with ``rng`` from the feature cache."""
        ...

    def evaluate(self) -> Evaluation:
        """Score the current weights on the validation split (drives model selection)."""
        ...

    def tune_decoding(self) -> Evaluation | None:
        """After training: choose decoding settings on validation (None: nothing to choose)."""
        ...

    def predict_cached(self) -> list[Detections]:
        """The current weights' predictions on the validation images (raw scores, 0–1)."""
        ...

    def chosen_tiling(self) -> TilingSpec | None:
        """The sliced inference :meth:`tune_decoding` kept (``model.json`` ``tiling``), or None."""
        ...

    def decoding_settings(self) -> dict[str, Any]:
        """The config fields (dotted) that :meth:`tune_decoding` chose, ``{}`` if none."""
        ...

    def export_module(self) -> nn.Module:
        """The whole model, ``images`` in, the outputs named in :meth:`head_card` out."""
        ...

    def head_card(self) -> dict[str, Any]:
        """``model.json`` ``head``: output names and decoding parameters."""
        ...


_BACKBONE_PARTS = ("tail", "pool")


def param_groups(module: nn.ModuleDict, config: TrainConfig) -> list[dict[str, Any]]:
    """The task's own layers at ``optim.lr``; fine-tuned backbone modules (``tail``, ``pool``)
    at ``optim.lr × model.tail_lr_scale``."""
    own = [p for name, m in module.items() if name not in _BACKBONE_PARTS for p in m.parameters()]
    backbone = [p for name in _BACKBONE_PARTS if name in module for p in module[name].parameters()]
    groups: list[dict[str, Any]] = [{"params": own}]
    if backbone:
        groups.append({"params": backbone, "lr_scale": config.model.tail_lr_scale})
    return groups


@contextmanager
def using_module(task: TaskAdapter, module: nn.ModuleDict) -> Iterator[None]:
    """Let ``task`` run with ``module`` in place of its own (a throw-away copy, an average of the
    weights): adapters reach their weights only through ``task.module``."""
    saved, task.module = task.module, module
    try:
        yield
    finally:
        task.module = saved
