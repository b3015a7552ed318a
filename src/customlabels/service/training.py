"""Training jobs requested through the API: queued, snapshotted, then run by a training runner.

CreateProjectVersion records the version as TRAINING_IN_PROGRESS and queues it. The trainer's
background thread snapshots the job's input (the dataset entries as Ground Truth manifests, and
the images they point to, hard-linked or copied under ``<version>/input/`` so ``s3://bucket/key``
resolves to ``input/key`` beside the manifest) and hands the job
(:class:`~customlabels.service.train_job.TrainJob`) to the runner that
``ServiceSettings.train_runner`` names in :data:`RUNNERS`:

``embedded`` (default)
    ``customlabels train`` (then ``customlabels evaluate``) in a child process of this server;
    the thread waits on it, so jobs run one at a time and the server stays responsive. A server
    restart marks an interrupted job TRAINING_FAILED with a reason (the child dies with it).
``celery``
    a task on the ``train`` queue of a broker, run by ``customlabels worker --queues train`` on
    another machine that sees this server's home at the same path
    (:mod:`~customlabels.service.train_celery`). A server restart keeps following the job.

Both run the same procedure (:func:`~customlabels.service.train_job.run_job`), so progress
(phase, ``model/metrics.csv``, ``train.stdout.log``), the outcome (TRAINING_COMPLETED with the
evaluation, or TRAINING_FAILED with the log's tail) and cancelling read the same.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import select

from customlabels.core.uris import parse_s3_uri
from customlabels.errors import ConfigError, CustomLabelsError
from customlabels.service.buckets import Buckets
from customlabels.service.catalog import (
    Catalog,
    DatasetEntryRow,
    DatasetRow,
    VersionRow,
    VersionStatus,
)
from customlabels.service.context import now
from customlabels.service.evaluation_summary import publish_results
from customlabels.service.expert_config import EXPERT_CONFIG_NAME
from customlabels.service.settings import ServiceSettings
from customlabels.service.train_job import (
    CANCELLED,
    INTERRUPTED,
    TRAINING,
    TrainJob,
    child_env,
    run_job,
    train_argv,
)

__all__ = ["RUNNERS", "Runner", "Trainer", "create_runner", "train_argv"]

log = logging.getLogger(__name__)

_UNFOLLOWED = (
    "interrupted: this version was sent to a training worker, but the server now trains "
    "embedded and cannot follow it (start it with --train-runner celery); train it again"
)


class Runner(Protocol):
    """A way to run training jobs (a port; :data:`RUNNERS` lists the adapters).

    Attributes:
        follows_tasks: a TRAINING_IN_PROGRESS version with a ``task_id`` that a previous
            server left is followed by this runner (not failed as interrupted).
    """

    follows_tasks: bool

    def run(self, version_id: int, job: TrainJob) -> None:
        """Run the job (or hand it off); its end is reported through :meth:`Trainer.finish`."""

    def cancel(self, version_id: int) -> bool:
        """Stop a job; True if it was running and will report its own end (as cancelled),
        False if the trainer should mark it cancelled now."""

    def follow(self, version_id: int) -> None:
        """Follow a job a previous server handed off (only when :attr:`follows_tasks`)."""

    def shutdown(self) -> None:
        """Stop this server's part (an embedded child is terminated)."""


class Trainer:
    """Queues training jobs, snapshots their input and runs them with the configured runner."""

    def __init__(self, settings: ServiceSettings, catalog: Catalog, buckets: Buckets) -> None:
        self.settings = settings
        self.catalog = catalog
        self.buckets = buckets
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.stopping = False
        self.lock = threading.Lock()
        self.cancelled: set[int] = set()
        self.runner = create_runner(settings.train_runner, self)

    # --- lifecycle -------------------------------------------------------------------------
    def recover(self) -> None:
        """Fail what a previous server left training (unless the runner still follows it: a
        job on the ``train`` queue); stop what it left serving."""
        followed: list[int] = []
        with self.catalog.session() as s:
            for row in s.scalars(select(VersionRow)).all():
                if row.status == VersionStatus.TRAINING_IN_PROGRESS.value:
                    if row.task_id and self.runner.follows_tasks:
                        followed.append(row.id)
                        continue
                    _kill_stale(row.pid, row.model_dir)
                    row.status = VersionStatus.TRAINING_FAILED.value
                    row.status_message = _UNFOLLOWED if row.task_id else INTERRUPTED
                    row.training_end = now()
                    row.pid = None
                elif row.status in (
                    VersionStatus.STARTING.value,
                    VersionStatus.RUNNING.value,
                    VersionStatus.STOPPING.value,
                ):
                    row.status = VersionStatus.STOPPED.value
                    row.status_message = "stopped: the server restarted"
        for version_id in followed:
            self.runner.follow(version_id)

    def submit(self, version_id: int) -> None:
        """Queue a version (already TRAINING_IN_PROGRESS in the catalog) for training."""
        with self.lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="customlabels-trainer", daemon=True
                )
                self._thread.start()
        self._queue.put(version_id)

    def run_now(self, version_id: int, poll_s: float = 0.5) -> None:
        """Train in the calling thread (the CLI's local mode); a handed-off job is waited for."""
        self._run(version_id)
        while self.in_progress(version_id) and not self.stopping:
            time.sleep(poll_s)

    def cancel(self, version_id: int) -> None:
        """Cancel a queued or running training job: the version becomes TRAINING_FAILED with
        "cancelled by the user" (a running job is terminated first, then reports its end)."""
        with self.lock:
            self.cancelled.add(version_id)
        if not self.runner.cancel(version_id):
            # queued: the worker thread skips it (its status is no longer TRAINING_IN_PROGRESS)
            self.finish(version_id, ok=False, message=CANCELLED)

    def shutdown(self) -> None:
        """Stop the worker thread; an embedded job in progress is terminated and marked failed
        (a job on the ``train`` queue goes on: the next server follows it)."""
        with self.lock:  # no child starts after this point (see EmbeddedRunner.launch)
            self.stopping = True
        self.runner.shutdown()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=15)

    def in_progress(self, version_id: int) -> bool:
        with self.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            return row is not None and row.status == VersionStatus.TRAINING_IN_PROGRESS.value

    def stop_reason(self, version_id: int) -> str | None:
        """Why this server's job must stop now, or None."""
        if version_id in self.cancelled:
            return CANCELLED
        return INTERRUPTED if self.stopping else None

    # --- the worker thread -----------------------------------------------------------------
    def _work(self) -> None:
        while True:
            version_id = self._queue.get()
            if version_id is None or self.stopping:
                return
            try:
                self._run(version_id)
            except Exception:  # the worker must survive any one job
                log.exception("training job %s crashed", version_id)
                self.finish(version_id, ok=False, message="internal error while training")

    def _run(self, version_id: int) -> None:
        with self.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            if row is None or row.status != VersionStatus.TRAINING_IN_PROGRESS.value:
                return
            version_dir = Path(row.model_dir).parent
            budget = row.time_budget_s
            train_lines, test_lines = _job_lines(s, row)
        try:
            train_path, test_path = self._snapshot(version_dir / "input", train_lines, test_lines)
        except CustomLabelsError as exc:
            self.finish(version_id, ok=False, message=f"input: {exc.message}")
            return
        config = version_dir / EXPERT_CONFIG_NAME
        job = TrainJob(
            version_dir, train_path, test_path, config if config.is_file() else None, budget
        )
        self.runner.run(version_id, job)

    def _snapshot(
        self, input_dir: Path, train: list[str], test: list[str]
    ) -> tuple[Path, Path | None]:
        """Write the job's manifests and link/copy/download each image to ``input/<key>``."""
        if input_dir.exists():
            shutil.rmtree(input_dir)
        input_dir.mkdir(parents=True)
        for line in [*train, *test]:
            bucket, key = parse_s3_uri(json.loads(line)["source-ref"])
            target = input_dir / key
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            local = self.buckets.local_path(bucket, key)
            if local is not None and local.is_file():
                try:
                    os.link(local, target)
                except OSError:
                    shutil.copyfile(local, target)
            else:
                target.write_bytes(self.buckets.get(bucket, key))
        train_path = input_dir / "train.manifest"
        train_path.write_text("".join(line + "\n" for line in train))
        test_path = None
        if test:
            test_path = input_dir / "test.manifest"
            test_path.write_text("".join(line + "\n" for line in test))
        return train_path, test_path

    # --- what runners report ---------------------------------------------------------------
    def report(self, version_id: int, message: str) -> None:
        """A job's status message: a phase of :mod:`~customlabels.service.train_job` (the
        first :data:`TRAINING` starts the clock) or a queue state ("queued ...")."""
        with self.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            if row is None or row.status != VersionStatus.TRAINING_IN_PROGRESS.value:
                return
            if message == TRAINING and row.training_started_at is None:
                row.training_started_at = now()
            row.status_message = message

    def finish(self, version_id: int, ok: bool, message: str) -> None:
        """End a job: TRAINING_COMPLETED (the evaluation published to the output bucket) or
        TRAINING_FAILED with ``message``. A version that already ended (cancelled while a
        worker reported) is left as it is: the first end wins."""
        with self.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            if row is None or row.status != VersionStatus.TRAINING_IN_PROGRESS.value:
                return
            row.pid = None
            row.training_end = now()
            if ok:
                try:
                    results = publish_results(row, self.buckets)
                except CustomLabelsError as exc:
                    ok, message = False, f"evaluation output: {exc.message}"
                else:
                    row.f1_score = results.f1_score
                    row.summary_key = results.summary_key
                    row.manifest_summary_key = results.manifest_summary_key
            row.status = (
                VersionStatus.TRAINING_COMPLETED if ok else VersionStatus.TRAINING_FAILED
            ).value
            row.status_message = "training completed" if ok else message


class EmbeddedRunner:
    """Runs each job in child processes of this server, in the trainer's thread."""

    follows_tasks = False

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.proc: subprocess.Popen[bytes] | None = None
        self._running_id: int | None = None

    def run(self, version_id: int, job: TrainJob) -> None:
        self._running_id = version_id
        try:
            control = _EmbeddedControl(self, version_id)
            result = run_job(job, self.trainer.settings.train_command, control)
        finally:
            self._running_id = None
        self.trainer.finish(version_id, result.ok, result.message)

    def launch(
        self, version_id: int, argv: list[str], cwd: Path, out: IO[bytes]
    ) -> subprocess.Popen[bytes] | None:
        """Start a child of ``version_id`` unless the job must stop (under the trainer's lock,
        so that :meth:`Trainer.shutdown` never misses a child)."""
        with self.trainer.lock:
            if self.trainer.stop_reason(version_id) is not None:
                return None
            proc = self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=child_env()
            )
        log.info("training %s: %s", version_id, " ".join(argv))
        with self.trainer.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            if row is not None:
                row.pid = proc.pid
        return proc

    def cancel(self, version_id: int) -> bool:
        proc = self.proc if self._running_id == version_id else None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            return True
        return False

    def follow(self, version_id: int) -> None:
        raise ConfigError("the embedded runner follows no handed-off jobs")

    def shutdown(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


class _EmbeddedControl:
    """The :class:`~customlabels.service.train_job.JobControl` of an embedded job."""

    def __init__(self, runner: EmbeddedRunner, version_id: int) -> None:
        self.runner = runner
        self.version_id = version_id

    def phase(self, phase: str) -> None:
        self.runner.trainer.report(self.version_id, phase)

    def launch(self, argv: list[str], cwd: Path, out: IO[bytes]) -> subprocess.Popen[bytes] | None:
        return self.runner.launch(self.version_id, argv, cwd, out)

    def tick(self) -> None:
        pass  # the server's own child: the trainer sees it die

    def stop_reason(self) -> str | None:
        return self.runner.trainer.stop_reason(self.version_id)


def _celery_runner(trainer: Trainer) -> Runner:
    from customlabels.service.train_celery import CeleryRunner

    return CeleryRunner(trainer)


#: The training runners by ``ServiceSettings.train_runner`` name.
RUNNERS: dict[str, Callable[[Trainer], Runner]] = {
    "embedded": EmbeddedRunner,
    "celery": _celery_runner,
}


def create_runner(name: str, trainer: Trainer) -> Runner:
    """The runner ``name`` of :data:`RUNNERS` for ``trainer``.

    Raises:
        ConfigError: an unknown name (or a runner's own settings are incomplete).
    """
    factory = RUNNERS.get(name)
    if factory is None:
        raise ConfigError(f"train_runner: expected one of {', '.join(RUNNERS)}, got {name!r}")
    return factory(trainer)


def _job_lines(session: Any, row: VersionRow) -> tuple[list[str], list[str]]:
    """The valid JSON lines of the project's TRAIN (and TEST) datasets for this job.

    With ``TestingData.AutoCreate`` (or no TEST dataset) no test manifest is passed: training
    holds out its own group-aware 20% split of the training entries as the test set.
    """
    datasets = {
        d.dataset_type: d
        for d in session.scalars(select(DatasetRow).where(DatasetRow.project_id == row.project_id))
    }

    def lines(kind: str) -> list[str]:
        ds = datasets.get(kind)
        if ds is None or (kind == "TEST" and row.auto_test):
            return []
        return list(
            session.scalars(
                select(DatasetEntryRow.line)
                .where(DatasetEntryRow.dataset_id == ds.id, DatasetEntryRow.error == "")
                .order_by(DatasetEntryRow.id)
            )
        )

    return lines("TRAIN"), lines("TEST")


def _kill_stale(pid: int | None, model_dir: str) -> None:
    """End a training child a crashed server left behind (only if it is still that job)."""
    if not pid:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return
    if model_dir in cmdline.replace("\x00", " "):
        with contextlib.suppress(OSError):
            os.kill(pid, 15)
