"""Training jobs: the child process's command line, failures, shutdown and restart recovery.

A stand-in ``train_command`` (a short Python one-liner) replaces ``customlabels train`` so these
run in a second; the real training runs in tests/api/test_end_to_end.py.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from customlabels.errors import ConfigError
from customlabels.service import (
    Context,
    ServiceSettings,
    datasets,
    open_context,
    projects,
    versions,
)
from customlabels.service.catalog import VersionRow, VersionStatus
from customlabels.service.training import RUNNERS

MANIFEST = {
    "GroundTruthManifest": {"S3Object": {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}}
}


def _context(home: Path, buckets: Path, script: str) -> Context:
    settings = ServiceSettings(
        home=home,
        buckets_dir=buckets,
        train_time_budget_s=60,
        train_command=[sys.executable, "-c", script],
    )
    return open_context(settings)


@pytest.fixture
def make_ctx(tmp_path: Path, bccd_buckets: Path) -> Iterator[object]:
    opened: list[Context] = []

    def make(script: str) -> Context:
        ctx = _context(tmp_path / "home", bccd_buckets, script)
        opened.append(ctx)
        return ctx

    yield make
    for ctx in opened:
        ctx.close()


def _submit(ctx: Context, tags: dict[str, str] | None = None, auto: bool = True) -> tuple[str, str]:
    project = projects.create_project(ctx, "cells")["ProjectArn"]
    datasets.create_dataset(ctx, project, "TRAIN", MANIFEST)
    arn = versions.create_project_version(
        ctx,
        project,
        "v1",
        {"S3Bucket": "models-out", "S3KeyPrefix": "p"},
        testing_data={"AutoCreate": auto},
        tags=tags,
    )["ProjectVersionArn"]
    return project, arn


def _wait_status(ctx: Context, project: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        desc = versions.describe_project_versions(ctx, project)["ProjectVersionDescriptions"][0]
        if desc["Status"] != "TRAINING_IN_PROGRESS" or time.monotonic() > deadline:
            return desc
        time.sleep(0.1)


def _pid(ctx: Context) -> int | None:
    with ctx.catalog.session() as s:
        return s.query(VersionRow).one().pid


def test_the_job_gets_its_snapshot_budget_and_output_folder(make_ctx) -> None:  # type: ignore[no-untyped-def]
    script = "import json, sys; open('argv.json', 'w').write(json.dumps(sys.argv[1:]))"
    ctx = make_ctx(script)
    project, arn = _submit(ctx, tags={"customlabels:time-budget": "7"})
    desc = _wait_status(ctx, project)
    assert desc["Status"] == "TRAINING_FAILED"  # the stand-in writes no model
    assert "model.json" in str(desc["StatusMessage"])
    with ctx.catalog.session() as s:
        model_dir = Path(versions.get_version(s, arn).model_dir)
    argv = json.loads((model_dir.parent / "argv.json").read_text())
    manifest = Path(argv[1])
    assert argv[0] == "train" and argv[2:6] == ["--out", str(model_dir), "--time-budget", "7"]
    assert "--test" not in argv  # AutoCreate: training makes its own split
    lines = manifest.read_text().splitlines()
    assert len(lines) == 12
    key = json.loads(lines[0])["source-ref"].removeprefix("s3://bccd-demo/")
    assert (manifest.parent / key).is_file()  # s3://bucket/key resolves beside the manifest


def test_a_failing_child_fails_the_version_with_its_output(make_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx("import sys; print('error: out of patience'); sys.exit(3)")
    project, _ = _submit(ctx)
    desc = _wait_status(ctx, project)
    assert desc["Status"] == "TRAINING_FAILED"
    assert "exited with code 3" in str(desc["StatusMessage"])
    assert "out of patience" in str(desc["StatusMessage"])
    assert "EvaluationResult" not in desc and desc["BillableTrainingTimeInSeconds"] >= 0


def test_shutdown_and_restart_never_leave_a_version_in_progress(
    make_ctx, tmp_path: Path, bccd_buckets: Path
) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx("import time; time.sleep(60)")
    project, _ = _submit(ctx)
    deadline = time.monotonic() + 20
    while _pid(ctx) is None and time.monotonic() < deadline:  # the child started
        time.sleep(0.05)
    # the server answers while the child trains
    assert versions.describe_project_versions(ctx, project)["ProjectVersionDescriptions"]
    started = time.monotonic()
    ctx.close()
    assert time.monotonic() - started < 15
    reopened = make_ctx("")
    desc = versions.describe_project_versions(reopened, project)["ProjectVersionDescriptions"][0]
    assert desc["Status"] == "TRAINING_FAILED" and "interrupted" in str(desc["StatusMessage"])

    # a crash (no shutdown: the kernel drops the home's lock) leaves TRAINING_IN_PROGRESS /
    # RUNNING rows: the next start fixes them (tests/service/test_faults.py kills real servers)
    with reopened.catalog.session() as s:
        row = s.query(VersionRow).one()
        row.status = VersionStatus.TRAINING_IN_PROGRESS.value
    reopened.catalog.close()
    assert reopened.home_lock is not None
    reopened.home_lock.release()
    third = make_ctx("")
    desc = versions.describe_project_versions(third, project)["ProjectVersionDescriptions"][0]
    assert desc["Status"] == "TRAINING_FAILED" and "server stopped" in str(desc["StatusMessage"])
    with third.catalog.session() as s:
        s.query(VersionRow).one().status = VersionStatus.RUNNING.value
    third.catalog.close()
    assert third.home_lock is not None
    third.home_lock.release()
    fourth = make_ctx("")
    desc = versions.describe_project_versions(fourth, project)["ProjectVersionDescriptions"][0]
    assert desc["Status"] == "STOPPED"


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_every_runner_opens_and_closes_without_a_job(tmp_path: Path, name: str) -> None:
    settings = ServiceSettings(
        home=tmp_path, train_runner=name, train_broker="redis://127.0.0.1:1/0"
    )
    ctx = open_context(settings)  # builds the runner, connects to nothing
    try:
        assert type(ctx.trainer.runner).__name__.lower().startswith(name)
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"train_runner": "slurm"}, "train_runner: expected one of embedded, celery, got 'slurm'"),
        ({"train_runner": "celery"}, "needs a broker (--train-broker"),
    ],
)
def test_a_runner_that_cannot_run_is_refused_at_start(
    tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        open_context(ServiceSettings(home=tmp_path, **settings))  # type: ignore[arg-type]
