"""The whole story with boto3's real rekognition client against a live server: create a project,
import a Ground Truth manifest from a bucket, train (background process, tiny budget) with an
automatic test split, wait with boto3's waiters, start, detect (bytes and S3 object, with and
without MinConfidence), stop, see ResourceNotReadyException, delete."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from ._live import Live

IMAGE_KEY = "images/BloodImage_00000.jpg"


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _train(client: Any) -> tuple[str, str]:
    project = client.create_project(ProjectName="bccd")["ProjectArn"]
    client.create_dataset(
        ProjectArn=project,
        DatasetType="TRAIN",
        DatasetSource={
            "GroundTruthManifest": {
                "S3Object": {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}
            }
        },
    )
    version = client.create_project_version(
        ProjectArn=project,
        VersionName="v1",
        OutputConfig={"S3Bucket": "models-out", "S3KeyPrefix": "runs/"},
        TestingData={"AutoCreate": True},
        Tags={"customlabels:time-budget": "10"},  # training runs its minimum of steps
    )["ProjectVersionArn"]
    assert "/version/v1/" in version
    # the server answers while training runs in its child process
    described = client.describe_project_versions(ProjectArn=project)
    assert described["ProjectVersionDescriptions"][0]["Status"] == "TRAINING_IN_PROGRESS"
    client.get_waiter("project_version_training_completed").wait(
        ProjectArn=project, VersionNames=["v1"], WaiterConfig={"Delay": 2, "MaxAttempts": 450}
    )
    return project, version


def test_train_start_detect_stop_delete(live: Live, client: Any, bccd_buckets: Path) -> None:
    project, version = _train(client)
    desc = client.describe_project_versions(ProjectArn=project, VersionNames=["v1"])[
        "ProjectVersionDescriptions"
    ][0]
    assert desc["Status"] == "TRAINING_COMPLETED"
    assert desc["BillableTrainingTimeInSeconds"] > 0
    summary = desc["EvaluationResult"]["Summary"]["S3Object"]
    assert summary["Bucket"] == "models-out"
    summary_file = bccd_buckets / "models-out" / summary["Name"]
    assert summary_file.is_file() and "LabelEvaluationResults" in json.loads(
        summary_file.read_text()
    )
    assert (bccd_buckets / "models-out" / "runs/bccd/v1/model.onnx").is_file()
    # the evaluation area's service-shaped summary and the evaluation manifest
    summary_json = json.loads(summary_file.read_text())
    f1 = summary_json["AggregatedEvaluationResults"]["F1Score"]
    assert desc["EvaluationResult"].get("F1Score") == (None if f1 is None else pytest.approx(f1))
    labelled = {r["Label"] for r in summary_json["LabelEvaluationResults"]}
    assert labelled <= {"RBC", "WBC", "Platelets"}
    evaluation = bccd_buckets / "models-out" / "runs/bccd/v1/evaluation"
    assert (evaluation / "evaluation.manifest").is_file()
    manifest_summary = bccd_buckets / "models-out" / desc["ManifestSummary"]["S3Object"]["Name"]
    stats = json.loads(manifest_summary.read_text())["statistics"]
    assert stats["total_json_lines"] == 12
    assert (
        stats["training_json_lines"] + stats["validation_json_lines"] + stats["testing_json_lines"]
        <= 12
    )
    assert stats["testing_json_lines"] >= 1

    image = (bccd_buckets / "bccd-demo" / IMAGE_KEY).read_bytes()
    with pytest.raises(ClientError) as exc:  # trained but not started
        client.detect_custom_labels(ProjectVersionArn=version, Image={"Bytes": image})
    assert _code(exc) == "ResourceNotReadyException"

    assert (
        client.start_project_version(ProjectVersionArn=version, MinInferenceUnits=2)["Status"]
        == "STARTING"
    )
    client.get_waiter("project_version_running").wait(
        ProjectArn=project, VersionNames=["v1"], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    with pytest.raises(ClientError) as exc:  # running versions cannot be deleted
        client.delete_project_version(ProjectVersionArn=version)
    assert _code(exc) == "ResourceInUseException"

    everything = client.detect_custom_labels(
        ProjectVersionArn=version, Image={"Bytes": image}, MinConfidence=0
    )["CustomLabels"]
    assert everything, "a model trained on this image finds something at MinConfidence 0"
    confidences = [c["Confidence"] for c in everything]
    assert confidences == sorted(confidences, reverse=True)
    for label in everything:
        assert label["Name"] in {"RBC", "WBC", "Platelets"}
        box = label["Geometry"]["BoundingBox"]
        assert all(0 <= box[k] <= 1 for k in ("Left", "Top", "Width", "Height"))
    default = client.detect_custom_labels(ProjectVersionArn=version, Image={"Bytes": image})
    assert len(default["CustomLabels"]) <= len(everything)  # assumed thresholds ≥ 0
    from_bucket = client.detect_custom_labels(
        ProjectVersionArn=version,
        Image={"S3Object": {"Bucket": "bccd-demo", "Name": IMAGE_KEY}},
        MinConfidence=0,
    )["CustomLabels"]
    assert from_bucket == everything
    one = client.detect_custom_labels(
        ProjectVersionArn=version, Image={"Bytes": image}, MinConfidence=0, MaxResults=1
    )["CustomLabels"]
    assert one == everything[:1]

    _bad_images(client, version)

    assert client.stop_project_version(ProjectVersionArn=version)["Status"] == "STOPPING"
    assert (
        client.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"][0][
            "Status"
        ]
        == "STOPPED"
    )
    with pytest.raises(ClientError) as exc:
        client.detect_custom_labels(ProjectVersionArn=version, Image={"Bytes": image})
    assert _code(exc) == "ResourceNotReadyException"
    assert live.ctx.pool.running() == []

    assert client.delete_project_version(ProjectVersionArn=version)["Status"] == "DELETING"
    assert client.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"] == []
    client.delete_project(ProjectArn=project)


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _bad_images(client: Any, version: str) -> None:
    cases = [
        ({"Bytes": b"GIF89a not a jpeg or png"}, "InvalidImageFormatException"),
        ({"Bytes": b"\xff\xd8\xff" + b"\0" * 100}, "InvalidImageFormatException"),  # truncated
        ({"Bytes": b"\xff\xd8\xff" + b"\0" * (4 * 1024 * 1024 + 1)}, "ImageTooLargeException"),
        ({"Bytes": _png(5000, 8)}, "ImageTooLargeException"),  # small file, side over 4096
        (
            {"S3Object": {"Bucket": "bccd-demo", "Name": "images/none.jpg"}},
            "InvalidS3ObjectException",
        ),
        (
            {"S3Object": {"Bucket": "bccd-demo", "Name": "../models-out/x"}},
            "InvalidS3ObjectException",
        ),
    ]
    for image, code in cases:
        with pytest.raises(ClientError) as exc:
            client.detect_custom_labels(ProjectVersionArn=version, Image=image)
        assert _code(exc) == code, image.keys()
    with pytest.raises(ClientError) as exc:
        client.detect_custom_labels(
            ProjectVersionArn=version, Image={"Bytes": _png(64, 64)}, MinConfidence=101
        )
    assert _code(exc) == "InvalidParameterException"
