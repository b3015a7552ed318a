"""Buckets in an S3-compatible store (SeaweedFS, `serve --s3-endpoint-url`): a dataset imported
from a manifest object, a training job whose input is downloaded and whose output is written
back to the output bucket, and DetectCustomLabels on an S3 object."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.pipeline.local_servers import SeaweedFS, seaweedfs_server
from customlabels.service import ServiceSettings, open_context

from ._live import KEY, SECRET, make_client

# Stands in for `customlabels train`: "trains" by copying a real tiny model into --out (the
# real training through the service runs in test_end_to_end.py); `evaluate` does nothing.
FAKE_TRAIN = (
    "import shutil, sys\n"
    "if sys.argv[1] == 'train':\n"
    "    shutil.copytree(MODEL, sys.argv[sys.argv.index('--out') + 1])\n"
)


@pytest.fixture(scope="module")
def weed() -> Iterator[SeaweedFS]:
    with seaweedfs_server() as server:
        yield server


@pytest.fixture
def s3_endpoint(weed: SeaweedFS) -> str:
    return weed.endpoint


@pytest.fixture
def s3(weed: SeaweedFS, monkeypatch: pytest.MonkeyPatch, bccd_buckets: Path) -> Any:
    for name, value in weed.env().items():  # the server's S3Store uses the usual AWS chain
        monkeypatch.setenv(name, value)
    s3_endpoint = weed.endpoint
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, config=Config(s3={"addressing_style": "path"})
    )
    for bucket in ("bccd-demo", "models-out"):
        with contextlib.suppress(ClientError):  # module-scoped store: made by an earlier test
            client.create_bucket(Bucket=bucket)
    for path in sorted((bccd_buckets / "bccd-demo").rglob("*")):
        if path.is_file():
            key = path.relative_to(bccd_buckets / "bccd-demo").as_posix()
            client.put_object(Bucket="bccd-demo", Key=key, Body=path.read_bytes())
    return client


def test_datasets_training_io_and_detection_through_an_s3_store(
    s3: Any, s3_endpoint: str, tmp_path: Path, tiny_detector_dir: Path
) -> None:
    settings = ServiceSettings(
        home=tmp_path / "home",
        s3_endpoint_url=s3_endpoint,
        access_key_id=KEY,
        secret_access_key=SECRET,
        train_command=[
            sys.executable,
            "-c",
            FAKE_TRAIN.replace("MODEL", repr(str(tiny_detector_dir))),
        ],
    )
    ctx = open_context(settings)
    try:
        with serve_in_thread(create_app(settings, ctx)) as url:
            rek = make_client(url)
            project = rek.create_project(ProjectName="cells")["ProjectArn"]
            dataset = rek.create_dataset(
                ProjectArn=project,
                DatasetType="TRAIN",
                DatasetSource={
                    "GroundTruthManifest": {
                        "S3Object": {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}
                    }
                },
            )["DatasetArn"]
            stats = rek.describe_dataset(DatasetArn=dataset)["DatasetDescription"]["DatasetStats"]
            assert stats["TotalEntries"] == 12
            with pytest.raises(ClientError) as exc:
                rek.create_project_version(
                    ProjectArn=project,
                    VersionName="v0",
                    OutputConfig={"S3Bucket": "no-such-bucket"},
                )
            assert exc.value.response["Error"]["Code"] == "InvalidS3ObjectException"
            version = rek.create_project_version(
                ProjectArn=project,
                VersionName="v1",
                OutputConfig={"S3Bucket": "models-out", "S3KeyPrefix": "runs"},
                TestingData={"AutoCreate": True},
            )["ProjectVersionArn"]
            rek.get_waiter("project_version_training_completed").wait(
                ProjectArn=project, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
            desc = rek.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"][
                0
            ]
            summary = desc["EvaluationResult"]["Summary"]["S3Object"]
            assert summary == {
                "Bucket": "models-out",
                "Name": "runs/cells/v1/EvaluationResultSummary.json",
            }
            body = s3.get_object(Bucket="models-out", Key=summary["Name"])["Body"].read()
            assert "LabelEvaluationResults" in json.loads(body)
            assert (
                s3.head_object(Bucket="models-out", Key="runs/cells/v1/model.onnx")["ContentLength"]
                > 0
            )
            # the job's input was downloaded from the store into its snapshot
            snapshot = tmp_path / "home" / "models" / "cells" / "v1" / "input"
            assert len(list((snapshot / "images").glob("*.jpg"))) == 12

            rek.start_project_version(ProjectVersionArn=version, MinInferenceUnits=1)
            rek.get_waiter("project_version_running").wait(
                ProjectArn=project, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
            image = {"S3Object": {"Bucket": "bccd-demo", "Name": "images/BloodImage_00000.jpg"}}
            from_s3 = rek.detect_custom_labels(
                ProjectVersionArn=version, Image=image, MinConfidence=0
            )
            data = s3.get_object(Bucket="bccd-demo", Key="images/BloodImage_00000.jpg")[
                "Body"
            ].read()
            from_bytes = rek.detect_custom_labels(
                ProjectVersionArn=version, Image={"Bytes": data}, MinConfidence=0
            )
            assert from_s3["CustomLabels"] == from_bytes["CustomLabels"]
            with pytest.raises(ClientError) as exc:
                rek.detect_custom_labels(
                    ProjectVersionArn=version,
                    Image={"S3Object": {"Bucket": "bccd-demo", "Name": "images/missing.jpg"}},
                )
            assert exc.value.response["Error"]["Code"] == "InvalidS3ObjectException"
            rek.stop_project_version(ProjectVersionArn=version)
    finally:
        ctx.close()
