"""The task registry: every task the recipe can resolve to has an adapter, and the driver's
only question to it is which one."""

from __future__ import annotations

import pytest

from customlabels.core.dataset import Task
from customlabels.errors import ConfigError
from customlabels.training.config import HeadName, TaskChoice
from customlabels.training.tasks import DETECTION_HEADS, TASKS, adapter_for


def test_every_resolved_task_has_an_adapter() -> None:
    assert set(TASKS) == set(TaskChoice) - {TaskChoice.AUTO}


@pytest.mark.parametrize("choice", list(TASKS), ids=str)
def test_adapter_states_what_the_card_needs(choice: TaskChoice) -> None:
    adapter = adapter_for(choice)
    assert adapter is TASKS[choice]
    assert adapter.card_task in set(Task)
    assert adapter.resize in ("letterbox", "stretch")


def test_each_task_names_its_own_card_task() -> None:
    assert {adapter.card_task for adapter in TASKS.values()} == set(Task)


def test_auto_must_be_resolved_by_the_recipe_first() -> None:
    with pytest.raises(ConfigError, match="task: expected one of"):
        adapter_for(TaskChoice.AUTO)


@pytest.mark.parametrize("head", list(HeadName), ids=str)
def test_every_detector_head_has_a_detection_adapter(head: HeadName) -> None:
    adapter = adapter_for(TaskChoice.DETECTION, head)
    assert adapter is DETECTION_HEADS[head]
    assert adapter.card_task == Task.OBJECT_LOCALIZATION
    assert adapter_for(TaskChoice.DETECTION) is TASKS[TaskChoice.DETECTION]  # fcos, the default
