"""What a training worker and the server tell each other through the shared version folder.

A job sent to the ``train`` queue (:mod:`customlabels.service.train_celery`) runs on another
machine that sees the server's home at the same path (a shared filesystem). Three files in the
version folder carry everything the server needs to follow it; no catalog access from workers:

``worker.claim``
    Created with ``O_CREAT | O_EXCL`` by the worker that takes the job: at most one run per
    version, even when the message is delivered twice (the server sends a job again after a
    restart when nobody has claimed it yet, since it cannot know whether the first send
    reached the broker).
``worker.json``
    The worker's state, replaced atomically: ``phase``, a heartbeat counter ``beat`` that grows
    every :data:`BEAT_EVERY_S` seconds while the job runs, and, once it ended, ``done`` with
    ``ok`` and ``message``. The server compares beats with its own monotonic clock (no clock
    sync between machines needed): a beat that stops for ``train_heartbeat_timeout_s`` means
    the worker died, and the version fails with a reason.
``cancel``
    Written by the server (StopProjectVersion / the console's Cancel): the worker terminates
    its child within a second, or never starts the job.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "BEAT_EVERY_S",
    "CANCEL_NAME",
    "CLAIM_NAME",
    "STATE_NAME",
    "Claim",
    "WorkerState",
    "cancel_requested",
    "is_claimed",
    "read_state",
    "request_cancel",
]

CLAIM_NAME = "worker.claim"
STATE_NAME = "worker.json"
CANCEL_NAME = "cancel"
#: A running job's heartbeat period (seconds); keep ``train_heartbeat_timeout_s`` well above.
BEAT_EVERY_S = 2.0


@dataclass
class WorkerState:
    """The content of ``worker.json``.

    Attributes:
        worker: ``host:pid`` of the worker process that runs the job.
        task_id: the Celery task id it runs under.
        phase: ``claimed``, then a phase of :mod:`~customlabels.service.train_job`.
        beat: heartbeat counter (grows while the job runs).
        done: the job ended; ``ok`` and ``message`` say how.
    """

    worker: str
    task_id: str
    phase: str = "claimed"
    beat: int = 0
    done: bool = False
    ok: bool = False
    message: str = ""


def is_claimed(version_dir: Path) -> bool:
    return (version_dir / CLAIM_NAME).exists()


def read_state(version_dir: Path) -> WorkerState | None:
    """The worker's last state, or None (not claimed yet, or the first write not visible)."""
    try:
        data = json.loads((version_dir / STATE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return WorkerState(**{k: v for k, v in data.items() if k in WorkerState.__dataclass_fields__})


def request_cancel(version_dir: Path) -> None:
    """Ask the worker (running or yet to start) to stop this job."""
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / CANCEL_NAME).write_text("cancelled by the user\n")


def cancel_requested(version_dir: Path) -> bool:
    return (version_dir / CANCEL_NAME).exists()


class Claim:
    """A worker's hold on one job; :meth:`take` it, then report through it."""

    def __init__(self, version_dir: Path, state: WorkerState) -> None:
        self.version_dir = version_dir
        self.state = state
        self._last_beat = time.monotonic()

    @classmethod
    def take(cls, version_dir: Path, task_id: str) -> Claim | None:
        """Claim the job; None when another delivery already did."""
        worker = f"{socket.gethostname()}:{os.getpid()}"
        try:
            fd = os.open(version_dir / CLAIM_NAME, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{worker} {task_id}\n")
        claim = cls(version_dir, WorkerState(worker=worker, task_id=task_id))
        claim._write()
        return claim

    def phase(self, phase: str) -> None:
        self.state.phase = phase
        self._write()

    def beat(self) -> None:
        """Advance the heartbeat (at most once per :data:`BEAT_EVERY_S`)."""
        if time.monotonic() - self._last_beat >= BEAT_EVERY_S:
            self._last_beat = time.monotonic()
            self.state.beat += 1
            self._write()

    def finish(self, ok: bool, message: str) -> None:
        self.state.done, self.state.ok, self.state.message = True, ok, message
        self._write()

    def _write(self) -> None:
        path = self.version_dir / STATE_NAME
        tmp = path.with_name(f".{STATE_NAME}.{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self.state)))
        try:
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
