"""Views and steps: fixed by the config, or planned from the time budget."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from customlabels.training.budget import MIN_STEPS, RESERVE_S, plan_steps, views_to_cache
from customlabels.training.config import TrainConfig
from customlabels.training.recipe import CACHE_SHARE, max_views
from customlabels.training.selection import Evaluation


class LinearTask:
    """A least-squares 'task' with the adapter's interface: real steps, real (tiny) cost."""

    def __init__(self, cap: int | None = None, eval_s: float = 0.0, tunes: bool = False):
        self.module = nn.ModuleDict({"head": nn.Linear(8, 1)})
        self.cap, self.eval_s, self.tunes = cap, eval_s, tunes
        self.x, self.y = torch.randn(64, 8), torch.randn(64, 1)

    def step_cap(self, views: int) -> int | None:
        return self.cap

    def decoding_seconds(self, t_eval: float) -> float:
        return 2 * t_eval if self.tunes else 0.0

    def losses(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(rng.choice(64, size=8))
        return {"mse": nn.functional.mse_loss(self.module["head"](self.x[idx]), self.y[idx])}

    def evaluate(self) -> Evaluation:
        time.sleep(self.eval_s)
        return Evaluation(score=0.0, summary={})

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.module.parameters())}]


def test_fixed_steps_are_kept_and_validated_about_eight_times() -> None:
    config = TrainConfig.from_dict({"optim": {"steps": 100}})
    resolved, plan = plan_steps(config, LinearTask(cap=50), 10, time.monotonic())
    assert (plan.steps, plan.every, plan.deadline, plan.min_steps) == (100, 13, None, 1)
    assert plan.step_cap == 50  # only a budget run's re-planning is capped
    assert resolved == config
    every = TrainConfig.from_dict({"optim": {"steps": 100}, "eval": {"every": 7}})
    assert plan_steps(every, LinearTask(), 10, time.monotonic())[1].every == 7


def test_a_resumed_run_keeps_its_total() -> None:
    config = TrainConfig.from_dict({"optim": {"steps": 100}})
    resolved, plan = plan_steps(config, LinearTask(), 10, time.monotonic(), resumed_total=240)
    assert plan.steps == 240 and resolved.optim.steps == 240


@pytest.mark.parametrize("tunes", [False, True])
def test_budget_plans_steps_from_the_measured_speed(tunes: bool) -> None:
    config = TrainConfig.from_dict({"time_budget_s": 60})
    t_start = time.monotonic()
    resolved, plan = plan_steps(config, LinearTask(eval_s=0.05, tunes=tunes), 10, t_start)
    assert config.optim.steps is None, "the given config is left as it was"
    assert resolved.optim.steps == plan.steps > 1000  # a tiny step: many in 60 s
    assert plan.min_steps == MIN_STEPS
    assert plan.deadline is not None
    reserve = t_start + 60 - plan.deadline
    assert reserve == pytest.approx(RESERVE_S + (0.1 if tunes else 0.0), abs=0.04)
    assert plan.steps / plan.every <= 8


def test_budget_steps_stop_at_the_task_cap() -> None:
    config = TrainConfig.from_dict({"time_budget_s": 60})
    _, plan = plan_steps(config, LinearTask(cap=300), 10, time.monotonic())
    assert plan.steps == 300


def test_views_from_the_budget_unless_fixed() -> None:
    budget = TrainConfig()
    resolved, deadline = views_to_cache(budget, {}, 50, t_start=100.0)
    assert resolved.augment.views_per_image == max_views(budget, 50)
    assert deadline == 100.0 + CACHE_SHARE * budget.time_budget_s
    user = {"augment": {"views_per_image": 2}}
    fixed = TrainConfig.from_dict(user)
    assert views_to_cache(fixed, user, 50, t_start=100.0) == (fixed, None)
    steps = TrainConfig.from_dict({"optim": {"steps": 10}})
    assert views_to_cache(steps, {}, 50, t_start=100.0) == (steps, None)
