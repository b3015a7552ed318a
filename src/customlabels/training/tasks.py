"""The task registry: the adapter that trains each task (``config.task``, once the recipe has
resolved ``auto``) and, for detection, each head (``model.head``). The driver (``run.py``) looks
the adapter up here and never branches on the task itself; the interface is
:class:`~customlabels.training.adapter.TaskAdapter`."""

from __future__ import annotations

from customlabels.errors import ConfigError
from customlabels.training.adapter import TaskAdapter
from customlabels.training.classifier_task import ClassifierTask
from customlabels.training.config import HeadName, TaskChoice
from customlabels.training.detector_task import DetectorTask
from customlabels.training.ssd_task import SSDDetectorTask

__all__ = ["DETECTION_HEADS", "TASKS", "adapter_for"]

TASKS: dict[TaskChoice, type[TaskAdapter]] = {
    TaskChoice.DETECTION: DetectorTask,
    TaskChoice.CLASSIFICATION: ClassifierTask,
}

# model.head -> the detection adapter (TASKS[DETECTION] is the default head's).
DETECTION_HEADS: dict[HeadName, type[TaskAdapter]] = {
    HeadName.FCOS: DetectorTask,
    HeadName.SSD: SSDDetectorTask,
}


def adapter_for(task: TaskChoice, head: HeadName = HeadName.FCOS) -> type[TaskAdapter]:
    """The adapter class of ``task`` (and detector ``head``); ``auto`` must have been resolved
    by the recipe."""
    if task == TaskChoice.DETECTION:
        return DETECTION_HEADS[head]
    try:
        return TASKS[task]
    except KeyError:
        raise ConfigError(
            f"task: expected one of {[t.value for t in TASKS]} once resolved, got {task.value!r}"
        ) from None
