"""A real server process SIGKILLed mid-operation, then restarted on the same home: the catalog is
consistent, nothing stays in progress, and nothing half-written is served. One server per home;
concurrent writers to one SQLite catalog are serialised, never lost or corrupted."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from customlabels.errors import ResourceInUseError
from customlabels.pipeline.local_servers import wait_until
from customlabels.service import ServiceSettings, open_context, projects, versions

from .server_process import log_of, server_process, start_server

MANIFEST = {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}

# A stand-in for `customlabels train`: it writes half a model folder (a truncated model.onnx
# beside a valid model.json) and its pid, then trains "for ever".
_HALF_TRAINING = """
import json, os, pathlib, shutil, sys, time
out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1])
out.mkdir(parents=True, exist_ok=True)
shutil.copyfile({card!r}, out / 'model.json')
(out / 'model.onnx').write_bytes(open({onnx!r}, 'rb').read()[:4096])
pathlib.Path('child.pid').write_text(str(os.getpid()))
time.sleep(300)
"""


def _integrity(home: Path) -> str:
    with sqlite3.connect(home / "catalog.db") as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_killed_during_training_the_version_fails_and_its_half_model_is_never_served(
    tmp_path: Path, bccd_buckets: Path, tiny_detector_dir: Path
) -> None:
    home = tmp_path / "home"
    script = _HALF_TRAINING.format(
        card=str(tiny_detector_dir / "model.json"), onnx=str(tiny_detector_dir / "model.onnx")
    )
    settings = {"buckets_dir": bccd_buckets, "train_command": [sys.executable, "-c", script]}
    # The buckets are shared by the tests of this process: what earlier tests published stays.
    published = set((bccd_buckets / "models-out").rglob("model.onnx"))
    with server_process(home, **settings) as server:
        client = server.client()
        project = client.create_project(ProjectName="cells")["ProjectArn"]
        client.create_dataset(
            ProjectArn=project,
            DatasetType="TRAIN",
            DatasetSource={"GroundTruthManifest": {"S3Object": MANIFEST}},
        )
        version = client.create_project_version(
            ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": "models-out"}
        )["ProjectVersionArn"]
        pid_file = home / "models" / "cells" / "v1" / "child.pid"
        child = int(wait_until(lambda: pid_file.is_file() and pid_file.read_text(), 60, "child"))
        server.sigkill()
    assert _alive(child), "the training child outlives a SIGKILLed server"

    with server_process(home, **settings) as server:
        client = server.client()
        wait_until(lambda: not _alive(child), 30, "the stale training child to be ended")
        desc = client.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]
        assert [(d["ProjectVersionArn"], d["Status"]) for d in desc] == [
            (version, "TRAINING_FAILED")
        ]
        assert "interrupted" in desc[0]["StatusMessage"]
        with pytest.raises(ClientError) as exc:  # the half-written model is never loaded
            client.start_project_version(ProjectVersionArn=version, MinInferenceUnits=1)
        assert _code(exc) == "ResourceInUseException"
        assert set((bccd_buckets / "models-out").rglob("model.onnx")) == published  # none new
        client.delete_project_version(ProjectVersionArn=version)
        assert not (home / "models" / "cells" / "v1").exists()
    assert _integrity(home) == "ok"


def _big_manifest(buckets: Path, bccd_buckets: Path, copies: int) -> str:
    """A manifest of ``copies`` × the 12 BCCD lines, each with its own source-ref and its own
    image file (a hard link: CreateDataset checks that every line's image exists)."""
    source = bccd_buckets / "bccd-demo"
    lines = (source / "manifests" / "train.manifest").read_text().split("\n")
    lines = [line for line in lines if line]
    out = []
    for n in range(copies):
        for line in lines:
            entry = json.loads(line)
            original = entry["source-ref"].split("s3://bccd-demo/", 1)[1]
            entry["source-ref"] = entry["source-ref"].replace("/images/", f"/copy{n}/")
            target = buckets / "bccd-demo" / entry["source-ref"].split("s3://bccd-demo/", 1)[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source / original, target)
            out.append(json.dumps(entry))
    (buckets / "big").mkdir(parents=True)
    (buckets / "big" / "train.manifest").write_text("\n".join(out) + "\n")
    return "train.manifest"


def test_killed_during_create_dataset_the_dataset_is_all_there_or_not_at_all(
    tmp_path: Path, bccd_buckets: Path
) -> None:
    home, buckets = tmp_path / "home", tmp_path / "buckets"
    key = _big_manifest(buckets, bccd_buckets, copies=1000)  # 12,000 lines
    source = {"GroundTruthManifest": {"S3Object": {"Bucket": "big", "Name": key}}}
    with server_process(home, buckets_dir=buckets) as server:
        client = server.client()
        project = client.create_project(ProjectName="big")["ProjectArn"]
        outcome: list[Any] = []

        def create() -> None:
            try:
                outcome.append(
                    client.create_dataset(
                        ProjectArn=project, DatasetType="TRAIN", DatasetSource=source
                    )
                )
            except Exception as exc:  # the connection drops when the server dies
                outcome.append(exc)

        wal = home / "catalog.db-wal"
        written = wal.stat().st_size
        caller = threading.Thread(target=create)
        caller.start()
        # killed as soon as the dataset's rows are being written, before they are committed
        wait_until(lambda: wal.stat().st_size > written + 128 * 1024, 120, "rows written", 0.01)
        server.sigkill()
        caller.join(timeout=60)
    assert outcome and isinstance(outcome[0], Exception), "the server died mid-request"

    with server_process(home, buckets_dir=buckets) as server:
        client = server.client()
        described = client.describe_projects()["ProjectDescriptions"]
        assert [p["ProjectArn"] for p in described] == [project]
        assert described[0].get("Datasets", []) == []  # the transaction never committed
        shutil.copytree(bccd_buckets / "bccd-demo", buckets / "bccd-demo", dirs_exist_ok=True)
        dataset = client.create_dataset(
            ProjectArn=project,
            DatasetType="TRAIN",
            DatasetSource={"GroundTruthManifest": {"S3Object": MANIFEST}},
        )["DatasetArn"]
        stats = client.describe_dataset(DatasetArn=dataset)["DatasetDescription"]
        assert stats["Status"] == "CREATE_COMPLETE"
        assert stats["DatasetStats"]["TotalEntries"] == 12
    assert _integrity(home) == "ok"


def test_killed_while_starting_the_version_is_stopped_and_starts_again(
    tmp_path: Path, tiny_detector_dir: Path, bees_manifest: Path
) -> None:
    home = tmp_path / "home"
    ctx = open_context(ServiceSettings(home=home))
    try:
        project = projects.create_project(ctx, "bees")["ProjectArn"]
        arn = versions.import_model_version(ctx, project, "v1", tiny_detector_dir)[
            "ProjectVersionArn"
        ]
    finally:
        ctx.close()
    with server_process(home) as server:
        client = server.client()
        started = client.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=16)
        assert started["Status"] == "STARTING"
        server.sigkill()  # while its 16 inference sessions load
    with server_process(home) as server:
        client = server.client()
        desc = client.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]
        assert desc[0]["Status"] == "STOPPED"
        image_ref = json.loads(bees_manifest.read_text().splitlines()[0])["source-ref"]
        image = (bees_manifest.parent / image_ref.split("/", 3)[3]).read_bytes()
        with pytest.raises(ClientError) as exc:
            client.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
        assert _code(exc) == "ResourceNotReadyException"
        client.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
        client.get_waiter("project_version_running").wait(
            ProjectArn=project, VersionNames=["v1"], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        found = client.detect_custom_labels(
            ProjectVersionArn=arn, Image={"Bytes": image}, MinConfidence=0
        )
        assert found["CustomLabels"]
    assert _integrity(home) == "ok"


def test_a_second_server_on_the_same_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with server_process(home) as first:
        second = start_server(home)
        assert second.wait(timeout=60) != 0
        assert "in use by another server" in log_of(second).read_text()
        with pytest.raises(ResourceInUseError, match=f"pid {first.proc.pid}"):
            open_context(ServiceSettings(home=home))
        assert first.client().create_project(ProjectName="still-mine")["ProjectArn"]


_WRITER = """
import sys
from customlabels.service import ServiceSettings, open_context, projects
ctx = open_context(ServiceSettings(home=sys.argv[1]), recover=False)
for n in range(int(sys.argv[2])):
    projects.create_project(ctx, f"local-{n}")
ctx.close()
"""


def test_concurrent_writers_on_one_sqlite_catalog_are_serialised(tmp_path: Path) -> None:
    """A server taking CreateProject over HTTP while another process (the CLI's local mode)
    writes to the same catalog: every write lands, none fails, the file stays sound."""
    home, n = tmp_path / "home", 150
    with server_process(home) as server:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(home), str(n)],
            env=env,
            stderr=subprocess.PIPE,
        )
        client = server.client()
        for i in range(n):
            client.create_project(ProjectName=f"served-{i}")
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()[-2000:]
        names = set()
        paginator = client.get_paginator("describe_projects")
        for page in paginator.paginate():
            names |= {p["ProjectArn"].split("/")[1] for p in page["ProjectDescriptions"]}
    assert names == {f"served-{i}" for i in range(n)} | {f"local-{i}" for i in range(n)}
    assert _integrity(home) == "ok"
