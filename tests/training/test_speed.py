"""plan-budget: a measured step turned into a time budget (clipped) and the steps it buys."""

from __future__ import annotations

import pytest

from customlabels.training import speed


@pytest.mark.parametrize(
    ("step_s", "budget_s", "expected_steps"),
    [
        (0.25, 500, 600),  # 600 × 0.25 / 0.3
        (0.05, 300, 1800),  # a fast machine: the floor, and more steps than asked
        (1.0, 1200, 360),  # a slow one: the cap, and fewer
    ],
)
def test_budget_is_sized_from_the_measured_step(
    monkeypatch: pytest.MonkeyPatch, step_s: float, budget_s: int, expected_steps: int
) -> None:
    monkeypatch.setattr(speed, "time_recipe_step", lambda threads: step_s)
    plan = speed.plan_budget(600, threads=2, min_seconds=300, max_seconds=1200)
    assert (plan.threads, plan.step_seconds) == (2, step_s)
    assert plan.budget_seconds == budget_s
    assert plan.expected_steps == expected_steps
