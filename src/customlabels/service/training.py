"""Training jobs requested through the API: one background worker, one subprocess per job.

CreateProjectVersion records the version as TRAINING_IN_PROGRESS and queues it. The worker
thread snapshots the job's input (the dataset entries as Ground Truth manifests, and the images
they point to, hard-linked or copied under ``<version>/input/`` so ``s3://bucket/key`` resolves
to ``input/key`` beside the manifest), then runs ``customlabels train`` in a child process with
the time budget (with ``--test`` from the TEST dataset, or without it for ``AutoCreate``: then
training holds out its own group-aware 20% split). The server only waits on the child, so it
stays responsive. When the child exits the catalog is updated (TRAINING_COMPLETED with the
evaluation, or TRAINING_FAILED with the tail of its log). A server restart marks an interrupted
job TRAINING_FAILED with a reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select

from customlabels.core.model_card import CARD_NAME, ModelCard
from customlabels.core.uris import parse_s3_uri
from customlabels.errors import CustomLabelsError
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

__all__ = ["Trainer", "train_argv"]

log = logging.getLogger(__name__)

_INTERRUPTED = "interrupted: the server stopped while this version was training; train it again"
_CANCELLED = "cancelled by the user"


def train_argv(
    settings: ServiceSettings,
    train_manifest: Path,
    out_dir: Path,
    budget_s: float,
    test: Path | None,
    config: Path | None = None,
) -> list[str]:
    """The command line of one training job (``customlabels train``; see ``docs/training.md``),
    with ``--config`` when the version has an expert config."""
    prefix = settings.train_command or [sys.executable, "-m", "customlabels.cli.main"]
    argv = [*prefix, "train", str(train_manifest), "--out", str(out_dir)]
    argv += ["--time-budget", f"{budget_s:g}"]
    if test is not None:
        argv += ["--test", str(test)]
    if config is not None:
        argv += ["--config", str(config)]
    return argv


class Trainer:
    """Runs queued training jobs one at a time in child processes."""

    def __init__(self, settings: ServiceSettings, catalog: Catalog, buckets: Buckets) -> None:
        self.settings = settings
        self.catalog = catalog
        self.buckets = buckets
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._running_id: int | None = None
        self._cancelled: set[int] = set()

    # --- lifecycle -------------------------------------------------------------------------
    def recover(self) -> None:
        """Fail what a previous server left training; stop what it left serving."""
        with self.catalog.session() as s:
            for row in s.scalars(select(VersionRow)).all():
                if row.status == VersionStatus.TRAINING_IN_PROGRESS.value:
                    _kill_stale(row.pid, row.model_dir)
                    row.status = VersionStatus.TRAINING_FAILED.value
                    row.status_message = _INTERRUPTED
                    row.training_end = now()
                    row.pid = None
                elif row.status in (
                    VersionStatus.STARTING.value,
                    VersionStatus.RUNNING.value,
                    VersionStatus.STOPPING.value,
                ):
                    row.status = VersionStatus.STOPPED.value
                    row.status_message = "stopped: the server restarted"

    def submit(self, version_id: int) -> None:
        """Queue a version (already TRAINING_IN_PROGRESS in the catalog) for training."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="customlabels-trainer", daemon=True
                )
                self._thread.start()
        self._queue.put(version_id)

    def run_now(self, version_id: int) -> None:
        """Train in the calling thread (the CLI's local mode)."""
        self._run(version_id)

    def cancel(self, version_id: int) -> None:
        """Cancel a queued or running training job: the version becomes TRAINING_FAILED with
        "cancelled by the user" (a running child process is terminated)."""
        with self._lock:
            self._cancelled.add(version_id)
            proc = self._proc if self._running_id == version_id else None
        if proc is not None and proc.poll() is None:
            proc.terminate()
        else:  # queued: the worker skips it (its status is no longer TRAINING_IN_PROGRESS)
            self._finish(version_id, ok=False, message=_CANCELLED)

    def shutdown(self) -> None:
        """Stop the worker; a job in progress is terminated and marked failed."""
        with self._lock:  # no child starts after this point (see _child)
            self._stopping = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=15)

    # --- the worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            version_id = self._queue.get()
            if version_id is None or self._stopping:
                return
            try:
                self._run(version_id)
            except Exception:  # the worker must survive any one job
                log.exception("training job %s crashed", version_id)
                self._finish(version_id, ok=False, message="internal error while training")

    def _run(self, version_id: int) -> None:
        with self.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            if row is None or row.status != VersionStatus.TRAINING_IN_PROGRESS.value:
                return
            version_dir = Path(row.model_dir).parent
            budget = row.time_budget_s
            train_lines, test_lines = _job_lines(s, row)
        self._running_id = version_id
        try:
            train_path, test_path = self._snapshot(version_dir / "input", train_lines, test_lines)
        except CustomLabelsError as exc:
            self._finish(version_id, ok=False, message=f"input: {exc.message}")
            return
        config = version_dir / EXPERT_CONFIG_NAME
        argv = train_argv(
            self.settings,
            train_path,
            version_dir / "model",
            budget,
            test_path,
            config if config.is_file() else None,
        )
        log_path = version_dir / "train.stdout.log"
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        with self.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            if row is not None:
                row.training_started_at = now()
                row.status_message = "training"
        log.info("training %s: %s", version_id, " ".join(argv))
        rc = self._child(version_id, argv, version_dir, log_path, env)
        if rc == 0 and not self._stopping and (version_dir / "model" / CARD_NAME).is_file():
            self._evaluate(version_id, version_dir, train_lines + test_lines, log_path, env)
        if version_id in self._cancelled:
            self._finish(version_id, ok=False, message=_CANCELLED)
        elif self._stopping:
            self._finish(version_id, ok=False, message=_INTERRUPTED)
        elif rc != 0:
            self._finish(version_id, ok=False, message=_tail(log_path, rc))
        else:
            self._finish(version_id, ok=True, message="")

    def _child(
        self, version_id: int, argv: list[str], cwd: Path, log_path: Path, env: dict[str, str]
    ) -> int:
        """Run one child process (its output appended to ``log_path``); return its exit code."""
        with log_path.open("ab") as out:
            with self._lock:
                if self._stopping or version_id in self._cancelled:
                    return -15  # shutting down or cancelled: never start a child nobody stops
                proc = self._proc = subprocess.Popen(
                    argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env
                )
            with self.catalog.session() as s:
                row = s.get(VersionRow, version_id)
                if row is not None:
                    row.pid = proc.pid
            rc = proc.wait()
            self._proc = None
        return rc

    def _evaluate(
        self,
        version_id: int,
        version_dir: Path,
        lines: list[str],
        log_path: Path,
        env: dict[str, str],
    ) -> None:
        """Write ``model/evaluation/`` (the service-shaped ``EvaluationSummary.json``, the
        evaluation manifest, plots) with ``customlabels evaluate`` on the test images training
        used. A failure here keeps the model: the summary then comes from the model card."""
        model_dir = version_dir / "model"
        test_refs = set(ModelCard.load(model_dir).dataset.get("images", {}).get("test", []))
        test_lines = [line for line in lines if json.loads(line)["source-ref"] in test_refs]
        if not test_lines:
            return
        manifest = version_dir / "input" / "evaluation.manifest"
        manifest.write_text("".join(line + "\n" for line in test_lines))
        with self.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            if row is not None:
                row.status_message = "evaluating on the test set"
        prefix = self.settings.train_command or [sys.executable, "-m", "customlabels.cli.main"]
        argv = [
            *prefix,
            "evaluate",
            str(model_dir),
            str(manifest),
            "--out",
            str(model_dir / "evaluation"),
            "--bootstrap",
            "200",
            "--max-images",
            "8",
        ]
        rc = self._child(version_id, argv, version_dir, log_path, env)
        if rc != 0:
            log.warning("evaluation of %s failed (exit %s); see %s", version_dir, rc, log_path)

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

    def _finish(self, version_id: int, ok: bool, message: str) -> None:
        with self.catalog.session() as s:
            row = s.get(VersionRow, version_id)
            if row is None:
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


def _tail(log_path: Path, rc: int, lines: int = 5) -> str:
    try:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        tail = []
    return f"training exited with code {rc}: " + " | ".join(tail)[-1500:]


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
