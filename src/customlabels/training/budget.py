"""How much a run caches and trains: fixed by the config, or planned from the time budget.

With ``optim.steps: null`` the budget (``time_budget_s``) covers caching views (at most
``CACHE_SHARE`` of it, see ``recipe.py``), training and validation; the steps come from the
measured time of a step and of a validation. Export and test scoring come after the budget.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from customlabels.training.adapter import TaskAdapter, using_module
from customlabels.training.config import TrainConfig
from customlabels.training.recipe import CACHE_SHARE, is_set, max_views

__all__ = ["MIN_STEPS", "StepPlan", "measure_step", "plan_steps", "views_to_cache"]

log = logging.getLogger("customlabels.training")

MIN_STEPS = 100  # a budget run trains at least this long, even past its budget
MAX_EVALS = 8  # validations per run (at most; at least 2 in a budget run)
EVAL_SHARE = 0.15  # of the training time spent validating, at most
RESERVE_S = 10.0  # of the budget kept for what follows the last step


def views_to_cache(
    config: TrainConfig, user: dict[str, Any], n_images: int, t_start: float
) -> tuple[TrainConfig, float | None]:
    """Views per image to cache and when caching must stop (a ``time.monotonic()`` value).

    A budget run without a ``augment.views_per_image`` of the user's caches as many views as
    the memory cap allows until its share of the budget is spent; otherwise the configured
    number, without a deadline (deterministic).
    """
    if config.optim.steps is not None or is_set(user, "augment.views_per_image"):
        return config, None
    views = max_views(config, n_images)
    deadline = t_start + CACHE_SHARE * config.time_budget_s
    return config.resolved({"augment.views_per_image": views}), deadline


@dataclass(frozen=True)
class StepPlan:
    """What the training loop runs: ``steps`` (re-planned once by the loop in a budget run,
    never past ``step_cap``), validating every ``every`` steps, until ``deadline``."""

    steps: int
    every: int
    deadline: float | None
    step_cap: int | None

    @property
    def min_steps(self) -> int:
        return MIN_STEPS if self.deadline is not None else 1


def plan_steps(
    config: TrainConfig,
    task: TaskAdapter,
    views: int,
    t_start: float,
    resumed_total: int | None = None,
) -> tuple[TrainConfig, StepPlan]:
    """The step plan, and the config with the planned ``optim.steps`` (``resumed_total``: the
    total of the run being resumed, which wins)."""
    deadline = None
    n_evals = MAX_EVALS
    step_cap = task.step_cap(views)
    steps = config.optim.steps
    if steps is None:
        t_step = measure_step(task)
        t1 = time.monotonic()
        task.evaluate()
        t_eval = time.monotonic() - t1
        reserve = RESERVE_S + task.decoding_seconds(t_eval)
        left = config.time_budget_s - (time.monotonic() - t_start) - reserve
        n_evals = max(2, min(MAX_EVALS, int(EVAL_SHARE * left / max(t_eval, 1e-3))))
        left -= n_evals * t_eval
        steps = max(MIN_STEPS, int(left / t_step))
        if step_cap is not None:
            steps = min(steps, step_cap)
        deadline = t_start + config.time_budget_s - reserve
        log.info("step %.3f s, validation %.1f s -> %d steps in the budget", t_step, t_eval, steps)
    if resumed_total:
        steps = resumed_total
    if not config.eval.every and deadline is not None:
        every = max(1, math.ceil(steps / n_evals))
    else:
        every = config.eval.every or max(1, math.ceil(steps / MAX_EVALS))
    plan = StepPlan(steps=steps, every=every, deadline=deadline, step_cap=step_cap)
    return config.resolved({"optim.steps": steps}), plan


def measure_step(task: TaskAdapter) -> float:
    """Median seconds of a training step, on a throw-away copy of the module (the run's own
    weights and random streams are left as they were)."""
    module = copy.deepcopy(task.module)
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-6)
    rng = np.random.default_rng(12345)
    times = []
    with using_module(task, module), torch.random.fork_rng(devices=[]):
        for _ in range(4):
            t = time.monotonic()
            loss = sum(task.losses(rng).values())
            opt.zero_grad()
            loss.backward()  # type: ignore[union-attr]
            opt.step()
            times.append(time.monotonic() - t)
    return float(np.median(times[1:]))
