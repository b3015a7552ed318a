"""Training on another machine: the ``celery`` training runner and its ``train`` queue.

The server snapshots a job's input into the version folder as the embedded runner does, writes
the job (``job.json``) beside it and sends a Celery task to the ``train`` queue; a
``customlabels worker --queues train`` process on a stronger machine runs the same procedure
(:func:`~customlabels.service.train_job.run_job`: ``customlabels train`` then ``customlabels
evaluate``, the same ``train_argv``) in that folder.

**Shared folder.** The worker reads the input and writes the model at the same absolute paths
as the server: the server's home (``--home``, its ``models/`` at least) is a shared filesystem
(NFS, SMB, a cluster filesystem) mounted at the same path on every worker. That is the simplest
honest design for "a GPU box on the same network": the snapshot is already a folder, the model
is written once where the server serves it from, progress files (``model/metrics.csv``,
``train.stdout.log``) are read live exactly as for an embedded job, and nothing is copied twice.
(The S3-compatible store would need the snapshot uploaded and the model downloaded again, and
live progress mirrored.) The worker needs no catalog and no bucket credentials.

**Following a job.** The worker reports through files in the version folder
(:mod:`~customlabels.service.train_claim`): an exclusive claim, a state file with a heartbeat,
and a cancel marker the server writes. A monitor thread of the server mirrors the state into
the catalog once a second (phase, then TRAINING_COMPLETED / TRAINING_FAILED).

**Rules.**

- A server restart does not touch a job on the queue: the catalog's ``task_id`` says it was
  handed off, and the next server follows it (a finished job is picked up from its state file).
  A job nobody has claimed yet is sent again (the server cannot know whether its first send
  reached the broker); the claim makes the second delivery a no-op, so no job runs twice.
- A worker killed mid-job is not retried: its heartbeat stops and, after
  ``train_heartbeat_timeout_s``, the version is TRAINING_FAILED "the training worker ... stopped"
  (a re-run from scratch would double the time, and a crash such as running out of memory would
  repeat). ``task_acks_late`` keeps a worker from holding a second job while it trains; the
  broker may deliver a dead worker's message again later, which the claim turns into a no-op.
- Cancel writes the marker (a running worker terminates its child within a second and reports
  "cancelled by the user"; a worker that receives the job later never starts it) and revokes
  the task (live workers drop it unstarted).
- A broker that is down is retried (every few seconds) until it answers; the job stays queued.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from celery import Celery, Task
from sqlalchemy import select

from customlabels.errors import ConfigError
from customlabels.pipeline.celery_app import new_app, worker_argv
from customlabels.service.catalog import VersionRow, VersionStatus
from customlabels.service.train_claim import (
    Claim,
    WorkerState,
    cancel_requested,
    is_claimed,
    read_state,
    request_cancel,
)
from customlabels.service.train_job import (
    CANCELLED,
    EVALUATING,
    TRAINING,
    TrainJob,
    child_env,
    run_job,
)

if TYPE_CHECKING:
    from customlabels.service.training import Trainer

__all__ = [
    "TRAIN_QUEUE",
    "TRAIN_TASK",
    "CeleryRunner",
    "create_train_app",
    "run_train_worker",
    "task_id_for",
]

log = logging.getLogger(__name__)

TRAIN_QUEUE = "train"
TRAIN_TASK = "customlabels.train"
JOB_NAME = "job.json"
#: How often the server's monitor reads the state of handed-off jobs (seconds).
POLL_S = 1.0
#: How long an unreachable broker is left alone before the next send (seconds).
RESEND_AFTER_S = 5.0


def create_train_app(broker: str, visibility_timeout_s: float = 3600.0) -> Celery:
    """The Celery app of the ``train`` queue (server and workers).

    Args:
        broker: ``redis://HOST:6379/0`` or ``amqp://...``.
        visibility_timeout_s: Redis only: an unacknowledged message is delivered again after
            this long; harmless here (the claim makes it a no-op), so no need to exceed the
            longest training.
    """
    app = new_app(
        "customlabels-train",
        broker,
        TRAIN_QUEUE,
        visibility_timeout_s,
        # a killed job fails by heartbeat, never re-runs (see the module's rules); acks_late
        # (shared) keeps a worker from holding a second job while one trains
        task_reject_on_worker_lost=False,
        broker_connection_timeout=4.0,
    )
    app.task(name=TRAIN_TASK, bind=True)(_train)
    return app


def task_id_for(version_arn: str) -> str:
    """The Celery task id of a version's training (stable: a resend reuses it)."""
    return f"customlabels-train:{version_arn}"


# --- the worker side ---------------------------------------------------------------------------
class _Worker:
    """Per worker process: the ``train_command`` override (None: this interpreter's CLI)."""

    train_command: list[str] | None = None


def _train(task: Task, job_data: dict[str, Any]) -> str:
    """Run one job in its version folder; its state goes to the folder, never to a result."""
    job = TrainJob.from_dict(job_data)
    task_id = str(task.request.id)
    if not job.version_dir.is_dir():
        log.error(
            "job %s: version folder %s not found on this machine; a training worker must see "
            "the server's home at the same path (docs/service.md)",
            task_id,
            job.version_dir,
        )
        return "MISSING"
    claim = Claim.take(job.version_dir, task_id)
    if claim is None:
        log.info("job %s: already claimed by another delivery; skipped", task_id)
        return "DUPLICATE"
    if cancel_requested(job.version_dir):
        claim.finish(False, CANCELLED)
        return "CANCELLED"
    log.info("job %s: training in %s", task_id, job.version_dir)
    try:
        result = run_job(job, _Worker.train_command, _WorkerControl(claim))
    except Exception as exc:  # the server must hear of any failure
        log.exception("job %s crashed", task_id)
        claim.finish(False, f"internal error on the training worker {claim.state.worker}: {exc}")
        return "FAILED"
    claim.finish(result.ok, result.message)
    log.info("job %s: %s", task_id, "completed" if result.ok else result.message)
    return "COMPLETED" if result.ok else "FAILED"


class _WorkerControl:
    """The :class:`~customlabels.service.train_job.JobControl` of a job on a worker."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim

    def phase(self, phase: str) -> None:
        self.claim.phase(phase)

    def launch(self, argv: list[str], cwd: Path, out: IO[bytes]) -> subprocess.Popen[bytes] | None:
        if self.stop_reason() is not None:
            return None
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=child_env(),
            preexec_fn=_die_with_parent,
        )

    def tick(self) -> None:
        self.claim.beat()

    def stop_reason(self) -> str | None:
        return CANCELLED if cancel_requested(self.claim.version_dir) else None


def _die_with_parent() -> None:
    """In the training child (Linux): SIGTERM when the worker process that started it dies,
    so that a killed worker leaves no training behind that nobody follows (the embedded
    runner's stale children are ended by the next server start instead)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def run_train_worker(
    broker: str,
    concurrency: int = 1,
    visibility_timeout_s: float = 3600.0,
    loglevel: str = "INFO",
    train_command: list[str] | None = None,
) -> None:
    """Run a Celery worker of the ``train`` queue (``concurrency`` jobs at once) until stopped.

    SIGTERM waits for the running jobs to end (Celery's warm shutdown); a second one stops at
    once, and those jobs then fail by heartbeat on the server.
    """
    _Worker.train_command = train_command
    app = create_train_app(broker, visibility_timeout_s)
    log.info("training worker: queue %s on %s", TRAIN_QUEUE, broker)
    app.worker_main(argv=worker_argv(TRAIN_QUEUE, "customlabels-train", concurrency, loglevel))


# --- the server side ---------------------------------------------------------------------------
class CeleryRunner:
    """Hands jobs to the ``train`` queue and follows them (the ``celery`` training runner)."""

    follows_tasks = True

    def __init__(self, trainer: Trainer) -> None:
        broker = trainer.settings.train_broker
        if not broker:
            raise ConfigError(
                "train_runner celery: needs a broker (--train-broker redis://HOST:6379/0)"
            )
        self.trainer = trainer
        self.timeout_s = trainer.settings.train_heartbeat_timeout_s
        self.app = create_train_app(broker)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sent: set[int] = set()
        self._retry_at: dict[int, float] = {}
        self._beats: dict[int, tuple[int, float]] = {}

    def run(self, version_id: int, job: TrainJob) -> None:
        self._start()
        (job.version_dir / JOB_NAME).write_text(json.dumps(job.to_dict()))
        with self._lock:  # the monitor sends nothing of this job meanwhile
            with self.trainer.catalog.session() as s:
                row = s.get(VersionRow, version_id)
                if row is None or row.status != VersionStatus.TRAINING_IN_PROGRESS.value:
                    return
                row.task_id = task_id_for(row.arn)
                task_id = row.task_id
            self._send(version_id, task_id, job)

    def cancel(self, version_id: int) -> bool:
        with self.trainer.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            if row is None:
                return False
            version_dir, task_id = Path(row.model_dir).parent, row.task_id
        request_cancel(version_dir)  # first: a worker that claims it from now on skips it
        if task_id:
            try:
                self.app.control.revoke(task_id)
            except Exception as exc:  # best effort: the marker stops the job anyway
                log.warning("revoke %s: %s", task_id, exc)
        state = read_state(version_dir)
        return is_claimed(version_dir) and not (state is not None and state.done)

    def follow(self, version_id: int) -> None:
        self._start()  # the monitor sends it again if nobody has claimed it

    def shutdown(self) -> None:
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=15)
        self.app.close()

    # --- sending and following -------------------------------------------------------------
    def _send(self, version_id: int, task_id: str, job: TrainJob) -> None:
        """Send once (the caller holds the lock); on a broker failure the monitor retries."""
        try:
            self.app.send_task(
                TRAIN_TASK,
                args=[job.to_dict()],
                task_id=task_id,
                queue=TRAIN_QUEUE,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception as exc:  # kombu's OperationalError, socket errors: the broker is down
            log.warning("training job %s: broker unreachable: %s", version_id, exc)
            self._retry_at[version_id] = time.monotonic() + RESEND_AFTER_S
            self.trainer.report(version_id, f"queued: the broker is unreachable ({exc}); retrying")
            return
        self._sent.add(version_id)
        self._retry_at.pop(version_id, None)
        self.trainer.report(version_id, f"queued on the {TRAIN_QUEUE} queue")

    def _start(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._monitor, name="customlabels-train-monitor", daemon=True
                )
                self._thread.start()

    def _monitor(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self._check_all()
            except Exception:  # the monitor must survive a bad folder or a catalog hiccup
                log.exception("training monitor")

    def _check_all(self) -> None:
        with self.trainer.catalog.session() as s:
            rows = [
                (r.id, Path(r.model_dir).parent, r.status_message)
                for r in s.scalars(
                    select(VersionRow).where(
                        VersionRow.status == VersionStatus.TRAINING_IN_PROGRESS.value,
                        VersionRow.task_id != "",
                    )
                )
            ]
        for version_id, version_dir, message in rows:
            if self._stop.is_set():
                return
            self._check(version_id, version_dir, message)

    def _check(self, version_id: int, version_dir: Path, message: str) -> None:
        state = read_state(version_dir)
        if state is None:
            if not is_claimed(version_dir):
                self._resend_unclaimed(version_id, version_dir)
                return
            state = WorkerState(worker="?", task_id="", beat=-1)  # its first write pending
        if state.done:
            self._beats.pop(version_id, None)
            self.trainer.finish(version_id, state.ok, state.message)
            return
        if state.phase in (TRAINING, EVALUATING) and message != state.phase:
            self.trainer.report(version_id, state.phase)
        seen, t = self._beats.get(version_id), time.monotonic()
        if seen is None or seen[0] != state.beat:
            self._beats[version_id] = (state.beat, t)
        elif t - seen[1] > self.timeout_s:
            self._beats.pop(version_id, None)
            request_cancel(version_dir)  # a worker that was only cut off stops too
            self.trainer.finish(
                version_id,
                ok=False,
                message=f"the training worker {state.worker} stopped: no heartbeat for "
                f"{self.timeout_s:g} s; train it again",
            )

    def _resend_unclaimed(self, version_id: int, version_dir: Path) -> None:
        """Send a job this server has not sent (a previous server's, or a failed send)."""
        if version_id in self._sent or time.monotonic() < self._retry_at.get(version_id, 0.0):
            return
        try:
            job = TrainJob.from_dict(json.loads((version_dir / JOB_NAME).read_text()))
        except (OSError, ValueError, KeyError) as exc:
            self.trainer.finish(version_id, False, f"the job's {JOB_NAME} is unreadable: {exc}")
            return
        with self._lock:
            if version_id in self._sent:  # run() sent it while this waited for the lock
                return
            with self.trainer.catalog.session() as s:
                row = s.get(VersionRow, version_id)
                if row is None or row.status != VersionStatus.TRAINING_IN_PROGRESS.value:
                    return
                task_id = row.task_id
            self._send(version_id, task_id, job)
