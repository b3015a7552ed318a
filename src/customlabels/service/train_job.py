"""One training job, as every training runner runs it: ``customlabels train`` and then
``customlabels evaluate`` as child processes in the version folder.

The job is a plain dataclass with explicit ``to_dict`` / ``from_dict`` (a Celery message carries
it, see :mod:`customlabels.service.train_celery`). It names only files in the version folder,
written before the job starts (:meth:`~customlabels.service.training.Trainer` snapshots the
input), so the machine that runs it needs that folder and nothing else: no catalog, no buckets.

Who runs the job decides how a phase is reported and when to stop, through a
:class:`JobControl`: the embedded runner writes the catalog and is stopped by the server; a
Celery worker writes its state file and is stopped by the cancel marker.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from customlabels.core.model_card import CARD_NAME, ModelCard

__all__ = [
    "CANCELLED",
    "EVALUATING",
    "INTERRUPTED",
    "TRAINING",
    "JobControl",
    "JobResult",
    "TrainJob",
    "child_env",
    "command_prefix",
    "run_job",
    "train_argv",
]

log = logging.getLogger(__name__)

#: The phases a job reports (the status message of a version in TRAINING_IN_PROGRESS).
TRAINING = "training"
EVALUATING = "evaluating on the test set"
#: Why a stopped job failed.
INTERRUPTED = "interrupted: the server stopped while this version was training; train it again"
CANCELLED = "cancelled by the user"

#: How often a running child is checked for a stop request (seconds).
POLL_S = 0.5
#: How long a terminated child gets before it is killed (seconds).
GRACE_S = 10.0


@dataclass(frozen=True)
class TrainJob:
    """The input and output of one training job; absolute paths.

    Attributes:
        version_dir: the version folder; the model goes to ``model/``, the children's output
            to ``train.stdout.log``.
        train_manifest: Ground Truth manifest whose ``s3://bucket/key`` refs resolve to files
            ``key`` beside it (``input/train.manifest``).
        test_manifest: the TEST dataset's manifest, or None (training holds out its own split).
        config: the expert config (``customlabels train --config``), or None.
        budget_s: the training's wall-clock budget, seconds.
    """

    version_dir: Path
    train_manifest: Path
    test_manifest: Path | None
    config: Path | None
    budget_s: float

    @property
    def model_dir(self) -> Path:
        return self.version_dir / "model"

    @property
    def log_path(self) -> Path:
        return self.version_dir / "train.stdout.log"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (paths as strings, None kept)."""
        return {
            "version_dir": str(self.version_dir),
            "train_manifest": str(self.train_manifest),
            "test_manifest": None if self.test_manifest is None else str(self.test_manifest),
            "config": None if self.config is None else str(self.config),
            "budget_s": self.budget_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainJob:
        """Inverse of :meth:`to_dict`."""
        test, config = data.get("test_manifest"), data.get("config")
        return cls(
            version_dir=Path(data["version_dir"]),
            train_manifest=Path(data["train_manifest"]),
            test_manifest=None if test is None else Path(test),
            config=None if config is None else Path(config),
            budget_s=float(data["budget_s"]),
        )


@dataclass(frozen=True)
class JobResult:
    """How a job ended: ``ok``, else ``message`` says why (the version's status message)."""

    ok: bool
    message: str = ""


class JobControl(Protocol):
    """What the runner of a job provides."""

    def phase(self, phase: str) -> None:
        """The job entered :data:`TRAINING` or :data:`EVALUATING`."""

    def launch(self, argv: list[str], cwd: Path, out: IO[bytes]) -> subprocess.Popen[bytes] | None:
        """Start one child (stdout and stderr to ``out``); None refuses (the job is stopping)."""

    def tick(self) -> None:
        """Called every :data:`POLL_S` seconds while a child runs (a heartbeat)."""

    def stop_reason(self) -> str | None:
        """Why the job must stop now (:data:`CANCELLED`, :data:`INTERRUPTED`), or None."""


def command_prefix(train_command: list[str] | None) -> list[str]:
    """The argv prefix that runs this package's CLI (or the configured ``train_command``)."""
    return list(train_command or [sys.executable, "-m", "customlabels.cli.main"])


def train_argv(
    train_command: list[str] | None,
    train_manifest: Path,
    out_dir: Path,
    budget_s: float,
    test: Path | None,
    config: Path | None = None,
) -> list[str]:
    """The command line of one training job (``customlabels train``; see ``docs/training.md``),
    with ``--config`` when the version has an expert config."""
    argv = [*command_prefix(train_command), "train", str(train_manifest), "--out", str(out_dir)]
    argv += ["--time-budget", f"{budget_s:g}"]
    if test is not None:
        argv += ["--test", str(test)]
    if config is not None:
        argv += ["--config", str(config)]
    return argv


def run_job(job: TrainJob, train_command: list[str] | None, control: JobControl) -> JobResult:
    """Train, then evaluate the model on the test images training used.

    A failed evaluation keeps the model (its summary then comes from the model card). A stop
    request terminates the running child, and the job ends with the control's reason.
    """
    argv = train_argv(
        train_command,
        job.train_manifest,
        job.model_dir,
        job.budget_s,
        job.test_manifest,
        job.config,
    )
    control.phase(TRAINING)
    rc = _child(control, argv, job.version_dir, job.log_path)
    if rc == 0 and control.stop_reason() is None and (job.model_dir / CARD_NAME).is_file():
        _evaluate(job, train_command, control)
    reason = control.stop_reason()
    if reason is not None:
        return JobResult(False, reason)
    if rc != 0:
        return JobResult(False, _tail(job.log_path, rc))
    return JobResult(True)


def _child(control: JobControl, argv: list[str], cwd: Path, log_path: Path) -> int:
    """Run one child (its output appended to ``log_path``) until it exits; its exit code."""
    with log_path.open("ab") as out:
        proc = control.launch(argv, cwd, out)
        if proc is None:
            return -15  # stopping: never start a child nobody stops
        while True:
            try:
                return proc.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                control.tick()
                if control.stop_reason() is not None:
                    _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()


def _evaluate(job: TrainJob, train_command: list[str] | None, control: JobControl) -> None:
    """Write ``model/evaluation/`` (the service-shaped ``EvaluationSummary.json``, the
    evaluation manifest, plots) with ``customlabels evaluate`` on the test images training
    used."""
    model_dir = job.model_dir
    test_refs = set(ModelCard.load(model_dir).dataset.get("images", {}).get("test", []))
    lines: list[str] = []
    for manifest in (job.train_manifest, job.test_manifest):
        if manifest is not None and manifest.is_file():
            lines += [line for line in manifest.read_text().splitlines() if line.strip()]
    test_lines = [line for line in lines if json.loads(line)["source-ref"] in test_refs]
    if not test_lines:
        return
    manifest = job.train_manifest.parent / "evaluation.manifest"
    manifest.write_text("".join(line + "\n" for line in test_lines))
    control.phase(EVALUATING)
    argv = [
        *command_prefix(train_command),
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
    rc = _child(control, argv, job.version_dir, job.log_path)
    if rc != 0:
        log.warning("evaluation of %s failed (exit %s); see %s", job.version_dir, rc, job.log_path)


def child_env() -> dict[str, str]:
    """The environment of a training child: one OpenMP thread unless the caller chose."""
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def _tail(log_path: Path, rc: int, lines: int = 5) -> str:
    try:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        tail = []
    return f"training exited with code {rc}: " + " | ".join(tail)[-1500:]
