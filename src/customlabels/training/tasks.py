"""The task registry: the adapter that trains each task (``config.task``, once the recipe has
resolved ``auto``). The driver (``run.py``) looks the adapter up here and never branches on the
task itself; the interface is :class:`~customlabels.training.adapter.TaskAdapter`."""

from __future__ import annotations

from customlabels.errors import ConfigError
from customlabels.training.adapter import TaskAdapter
from customlabels.training.classifier_task import ClassifierTask
from customlabels.training.config import TaskChoice
from customlabels.training.detector_task import DetectorTask

__all__ = ["TASKS", "adapter_for"]

TASKS: dict[TaskChoice, type[TaskAdapter]] = {
    TaskChoice.DETECTION: DetectorTask,
    TaskChoice.CLASSIFICATION: ClassifierTask,
}


def adapter_for(task: TaskChoice) -> type[TaskAdapter]:
    """The adapter class of ``task``; ``auto`` must have been resolved by the recipe."""
    try:
        return TASKS[task]
    except KeyError:
        raise ConfigError(
            f"task: expected one of {[t.value for t in TASKS]} once resolved, got {task.value!r}"
        ) from None
