"""The ``celery`` training runner on real servers: redis-server on 127.0.0.1, a real
``customlabels worker --queues train`` process, real (tiny) trainings of 12 BCCD images.

The worker and the server share the home the way a GPU box would mount it (here: the same
folder on one machine). The embedded runner is covered by tests/service/test_training.py and
the API/console tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from customlabels.pipeline.local_servers import free_port, redis_server, stop_process, wait_until
from customlabels.service import (
    Context,
    ServiceSettings,
    datasets,
    open_context,
    projects,
    versions,
)
from customlabels.service.train_claim import read_state
from customlabels.service.version_view import cancel_training, version_details

MANIFEST = {
    "GroundTruthManifest": {"S3Object": {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}}
}
# a training of a few seconds: 10 steps on small inputs
TINY = "threads: 1\noptim: {steps: 10, batch_size: 4}\ninput: {width: 320, height: 256}\n"
# one that runs until its budget (or a cancel) ends it
LONG = "threads: 1\noptim: {steps: 100000, batch_size: 2}\ninput: {width: 320, height: 256}\n"


_CLI = [sys.executable, "-m", "customlabels.cli.main"]
_REDIS = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with redis_server() as url:
        yield url


class Worker:
    """A ``customlabels worker --queues train`` process in its own session."""

    def __init__(self, broker: str, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*_CLI, "worker", "--queues", "train", "--broker", broker],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, 90, "the training worker", every_s=0.3)

    def _ready(self) -> bool:
        text = self.text()
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {text[-3000:]}")
        return " ready." in text

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """The machine dies: the worker and its training child, at once."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(broker: str, tmp_path: Path) -> Iterator[Callable[[], Worker]]:
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(broker, tmp_path / f"worker{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def open_server(broker: str, tmp_path: Path, bccd_buckets: Path) -> Iterator[Callable[[], Context]]:
    """Open (again) the server's context on one home; closed after the test."""
    opened: list[Context] = []

    def open_() -> Context:
        settings = ServiceSettings(
            home=tmp_path / "home",
            buckets_dir=bccd_buckets,
            train_time_budget_s=60,
            train_runner="celery",
            train_broker=broker,
            train_heartbeat_timeout_s=6,
        )
        ctx = open_context(settings)
        opened.append(ctx)
        return ctx

    yield open_
    for ctx in opened:
        ctx.close()  # again for the ones a test closed: closing is idempotent


def _submit(ctx: Context, config: str, budget: str) -> str:
    project = projects.create_project(ctx, "cells")["ProjectArn"]
    datasets.create_dataset(ctx, project, "TRAIN", MANIFEST)
    arn: str = versions.create_project_version(
        ctx,
        project,
        "v1",
        {"S3Bucket": "models-out", "S3KeyPrefix": "p"},
        testing_data={"AutoCreate": True},
        tags={"customlabels:time-budget": budget},
        expert_config=config,
    )["ProjectVersionArn"]
    return arn


def _describe(ctx: Context, arn: str) -> dict[str, Any]:
    with ctx.catalog.session() as s:
        project = versions.get_version(s, arn).project.arn
    descs = versions.describe_project_versions(ctx, project)["ProjectVersionDescriptions"]
    desc: dict[str, Any] = next(d for d in descs if d["ProjectVersionArn"] == arn)
    return desc


def _wait_status(ctx: Context, arn: str, status: str, timeout: float) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        desc = _describe(ctx, arn)
        if desc["Status"] != "TRAINING_IN_PROGRESS" and desc["Status"] != status:
            raise AssertionError(f"expected {status}, got {desc}")
        return desc if desc["Status"] == status else None

    result: dict[str, Any] = wait_until(reached, timeout, status, every_s=0.3)
    return result


def _version_dir(ctx: Context, arn: str) -> Path:
    with ctx.catalog.session() as s:
        return Path(versions.get_version(s, arn).model_dir).parent


def _wait_training(ctx: Context, arn: str, timeout: float = 60) -> None:
    wait_until(
        lambda: version_details(ctx, arn)["message"] == "training", timeout, "training started"
    )


def test_a_job_trains_on_the_worker_across_server_restarts(
    open_server: Callable[[], Context], start_worker: Callable[[], Worker]
) -> None:
    ctx = open_server()
    arn = _submit(ctx, TINY, "5")
    wait_until(
        lambda: _describe(ctx, arn)["StatusMessage"] == "queued on the train queue", 20, "sent"
    )
    ctx.close()  # restart while the job waits in the broker, no worker yet
    ctx = open_server()  # sends it again (nobody has claimed it): two messages, one run
    assert _describe(ctx, arn)["Status"] == "TRAINING_IN_PROGRESS"
    worker = start_worker()
    _wait_training(ctx, arn)
    ctx.close()  # restart while the worker trains: the job is followed, not failed
    ctx = open_server()
    details = version_details(ctx, arn)
    assert details["status"] == "TRAINING_IN_PROGRESS", details["message"]

    desc = _wait_status(ctx, arn, "TRAINING_COMPLETED", 150)
    assert desc["EvaluationResult"]["F1Score"] >= 0
    version_dir = _version_dir(ctx, arn)
    state = read_state(version_dir)
    assert state is not None and state.done and state.ok
    assert state.worker.split(":")[1] != str(os.getpid())  # trained by the worker's process
    details = version_details(ctx, arn)
    assert details["evaluation"] is not None and details["history"]  # the same progress files
    assert details["step"] == 10
    wait_until(lambda: "already claimed" in worker.text(), 30, "the second delivery skipped")
    assert worker.text().count(": training in ") == 1  # two deliveries, one run


def test_a_server_that_trains_embedded_fails_the_jobs_it_cannot_follow(
    broker: str, tmp_path: Path, bccd_buckets: Path
) -> None:
    # database 1 of the broker: no worker of the other tests ever takes this job
    settings = ServiceSettings(
        home=tmp_path / "home",
        buckets_dir=bccd_buckets,
        train_runner="celery",
        train_broker=broker.rsplit("/", 1)[0] + "/1",
    )
    ctx = open_context(settings)
    try:
        arn = _submit(ctx, TINY, "5")
        wait_until(lambda: _describe(ctx, arn)["StatusMessage"].startswith("queued on"), 20, "sent")
    finally:
        ctx.close()
    settings.train_runner = "embedded"
    ctx = open_context(settings)
    try:
        desc = _describe(ctx, arn)
        assert desc["Status"] == "TRAINING_FAILED"
        assert "start it with --train-runner celery" in desc["StatusMessage"]
    finally:
        ctx.close()


def test_cancel_terminates_the_job_on_the_worker(
    open_server: Callable[[], Context], start_worker: Callable[[], Worker]
) -> None:
    start_worker()
    ctx = open_server()
    arn = _submit(ctx, LONG, "120")
    _wait_training(ctx, arn)
    version_dir = _version_dir(ctx, arn)
    wait_until(lambda: (version_dir / "model" / "metrics.csv").is_file(), 60, "a step logged")
    started = time.monotonic()
    assert cancel_training(ctx, arn) == {"Status": "CANCELLING"}
    desc = _wait_status(ctx, arn, "TRAINING_FAILED", 30)
    assert desc["StatusMessage"] == "cancelled by the user"
    assert time.monotonic() - started < 20
    state = read_state(version_dir)
    assert state is not None and state.done and state.message == "cancelled by the user"
    assert not _children_of(version_dir)  # the training child is gone


def test_a_killed_worker_fails_the_job_by_heartbeat(
    open_server: Callable[[], Context], start_worker: Callable[[], Worker]
) -> None:
    worker = start_worker()
    ctx = open_server()
    arn = _submit(ctx, LONG, "120")
    _wait_training(ctx, arn)
    worker.kill()
    desc = _wait_status(ctx, arn, "TRAINING_FAILED", 30)
    assert "stopped: no heartbeat for 6 s" in desc["StatusMessage"]
    assert "train it again" in desc["StatusMessage"]


def test_a_killed_pool_process_fails_the_job_and_takes_its_training_along(
    open_server: Callable[[], Context], start_worker: Callable[[], Worker]
) -> None:
    start_worker()
    ctx = open_server()
    arn = _submit(ctx, LONG, "120")
    _wait_training(ctx, arn)
    version_dir = _version_dir(ctx, arn)
    state = read_state(version_dir)
    assert state is not None
    wait_until(lambda: _children_of(version_dir), 20, "the training child")
    os.kill(int(state.worker.rsplit(":", 1)[1]), signal.SIGKILL)  # e.g. the OOM killer
    desc = _wait_status(ctx, arn, "TRAINING_FAILED", 30)
    assert "stopped: no heartbeat" in desc["StatusMessage"]
    wait_until(lambda: not _children_of(version_dir), 15, "the orphaned training to end")


def _children_of(version_dir: Path) -> list[int]:
    """Processes whose command line names the version folder (a training child)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(version_dir / "model") in cmdline and "customlabels" in cmdline:
            found.append(int(proc.name))
    return found


def test_a_job_waits_out_a_broker_that_is_down(tmp_path: Path, bccd_buckets: Path) -> None:
    import redis

    port = free_port()
    settings = ServiceSettings(
        home=tmp_path / "home",
        buckets_dir=bccd_buckets,
        train_runner="celery",
        train_broker=f"redis://127.0.0.1:{port}/0",
    )
    ctx = open_context(settings)
    server: subprocess.Popen[bytes] | None = None
    try:
        arn = _submit(ctx, TINY, "5")
        wait_until(
            lambda: "broker is unreachable" in _describe(ctx, arn)["StatusMessage"], 60, "a retry"
        )
        server = subprocess.Popen(
            [*_REDIS, "--port", str(port), "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        wait_until(
            lambda: _describe(ctx, arn)["StatusMessage"] == "queued on the train queue",
            60,
            "the job sent once the broker is up",
        )
        client = redis.Redis(host="127.0.0.1", port=port)
        assert client.llen("train") == 1  # the message waits for a worker
        client.close()
        assert _describe(ctx, arn)["Status"] == "TRAINING_IN_PROGRESS"
    finally:
        ctx.close()
        if server is not None:
            stop_process(server)
