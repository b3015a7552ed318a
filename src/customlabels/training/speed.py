"""How fast this machine trains, measured before training: a budget sized to a step count.

A time budget buys very different models on different machines: the same 5 minutes gave
about 700 detector steps on this project's idle 2-core machine and 168 on a slower one
(test bee F1 0.69 vs 0.58). :func:`time_recipe_step` times the automatic recipe's detector step
(a batch of eight 320² crops through the two fine-tuned backbone stages, the FPN and the FCOS
head, forward and backward, AdamW) on random features with the threads training would use;
:func:`plan_budget` turns a wanted number of steps into a time budget, from the share of a
budget that training spends in steps (measured, :data:`STEP_SHARE`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from customlabels.training.backbone import create_backbone
from customlabels.training.config import TrainConfig
from customlabels.training.detector import FCOSNeckHead
from customlabels.training.resources import torch_threads

__all__ = ["STEP_SHARE", "BudgetPlan", "plan_budget", "time_recipe_step"]

#: Steps a budget buys, as a share of ``budget / measured step``: the feature cache,
#: validations, the larger validation split and the step being dearer in the run than on random
#: features take the rest. Measured with `make demo` on the bee frames, 2026-11-30: 2 threads,
#: 300 s budget, 0.23 s measured → 346 steps (0.27); 1 thread, 634 s, 0.53 s → 383 steps
#: (0.32). The earlier 0.5 had the demo's budgets buy half the steps it promised.
STEP_SHARE = 0.3


@dataclass(frozen=True)
class BudgetPlan:
    """A time budget for ``target_steps`` on this machine.

    Attributes:
        threads: torch threads measured with (``threads: 0`` → the idle cores).
        step_seconds: median seconds per detector step.
        target_steps: the steps wanted.
        budget_seconds: the budget, clipped to ``[min_seconds, max_seconds]``.
        expected_steps: steps the budget buys at the measured speed.
    """

    threads: int
    step_seconds: float
    target_steps: int
    budget_seconds: int
    expected_steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_recipe_step(threads: int, repeats: int = 4, labels: int = 4) -> float:
    """Median seconds of one detector training step of the default recipe (see the module
    docstring) with ``threads`` torch threads; the first step (warm-up) is not counted."""
    torch.set_num_threads(max(1, threads))
    torch.manual_seed(0)
    cfg = TrainConfig()
    backbone = create_backbone(cfg.model.backbone)
    tail = backbone.upper_blocks(cfg.model.finetune_stages)
    head = FCOSNeckHead(
        backbone.spec.channels, labels, cfg.model.fpn_channels, cfg.model.head_convs
    )
    params = [*tail.parameters(), *head.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.optim.lr)
    side = cfg.input.crop // backbone.spec.strides[0]
    level = 2 - cfg.model.finetune_stages
    x = torch.randn(cfg.optim.batch_size, backbone.spec.channels[level], side, side)
    x = x.contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        feats = [x, *backbone.continue_features(x, level, tail)]
        out = head(feats)
        loss = sum(v.float().square().mean() for v in out.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def plan_budget(
    target_steps: int,
    threads: int,
    min_seconds: int = 300,
    max_seconds: int = 1200,
) -> BudgetPlan:
    """Measure the step time and size a budget for ``target_steps`` detector steps.

    ``threads``: 0 = what training's ``threads: 0`` picks (the idle cores, measured now).
    """
    if threads <= 0:
        threads = torch_threads(0)  # the one rule for "idle cores"
    step = time_recipe_step(threads)
    budget = int(np.clip(round(target_steps * step / STEP_SHARE), min_seconds, max_seconds))
    return BudgetPlan(threads, step, target_steps, budget, int(budget * STEP_SHARE / step))
