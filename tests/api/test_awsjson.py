"""boto3's own rekognition client against the AWS JSON endpoint: projects, datasets, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from ._live import Live, make_client

MANIFEST = {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}


def _error(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _project_with_train(client: Any, name: str = "cells") -> tuple[str, str]:
    project = client.create_project(ProjectName=name)["ProjectArn"]
    dataset = client.create_dataset(
        ProjectArn=project,
        DatasetType="TRAIN",
        DatasetSource={"GroundTruthManifest": {"S3Object": MANIFEST}},
    )["DatasetArn"]
    return project, dataset


def test_projects_create_describe_delete(client: Any) -> None:
    arn = client.create_project(ProjectName="cells")["ProjectArn"]
    assert arn.startswith("arn:aws:rekognition:local:000000000000:project/cells/")
    described = client.describe_projects(ProjectNames=["cells"])["ProjectDescriptions"]
    assert [p["ProjectArn"] for p in described] == [arn]
    assert described[0]["Status"] == "CREATED"
    with pytest.raises(ClientError) as exc:
        client.create_project(ProjectName="cells")
    assert _error(exc) == "ResourceInUseException"
    assert client.delete_project(ProjectArn=arn)["Status"] == "DELETING"
    assert client.describe_projects()["ProjectDescriptions"] == []


def test_dataset_from_a_ground_truth_manifest_in_a_bucket(client: Any) -> None:
    project, dataset = _project_with_train(client)
    assert "/dataset/train/" in dataset
    stats = client.describe_dataset(DatasetArn=dataset)["DatasetDescription"]
    assert stats["Status"] == "CREATE_COMPLETE"
    assert stats["DatasetStats"] == {
        "LabeledEntries": 12,
        "TotalEntries": 12,
        "TotalLabels": 3,
        "ErrorEntries": 0,
    }
    labels = client.list_dataset_labels(DatasetArn=dataset)["DatasetLabelDescriptions"]
    assert {d["LabelName"] for d in labels} == {"RBC", "WBC", "Platelets"}
    assert all(d["LabelStats"]["BoundingBoxCount"] >= d["LabelStats"]["EntryCount"] for d in labels)
    page = client.list_dataset_entries(DatasetArn=dataset, MaxResults=5)
    assert len(page["DatasetEntries"]) == 5 and page["NextToken"]
    rest = client.list_dataset_entries(DatasetArn=dataset, NextToken=page["NextToken"])
    refs = [json.loads(e)["source-ref"] for e in page["DatasetEntries"] + rest["DatasetEntries"]]
    assert len(set(refs)) == 12
    only = client.list_dataset_entries(DatasetArn=dataset, SourceRefContains="00001.jpg")
    assert len(only["DatasetEntries"]) == 1
    # a copy for TEST, then distribute moves 20% of TRAIN into an empty TEST
    with pytest.raises(ClientError) as exc:
        client.create_dataset(ProjectArn=project, DatasetType="TRAIN")
    assert _error(exc) == "ResourceAlreadyExistsException"
    test = client.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    client.distribute_dataset_entries(Datasets=[{"Arn": dataset}, {"Arn": test}])
    train_n = client.describe_dataset(DatasetArn=dataset)["DatasetDescription"]["DatasetStats"]
    test_n = client.describe_dataset(DatasetArn=test)["DatasetDescription"]["DatasetStats"]
    assert (train_n["TotalEntries"], test_n["TotalEntries"]) in {(10, 2), (9, 3)}
    project_desc = client.describe_projects()["ProjectDescriptions"][0]
    assert {d["DatasetType"] for d in project_desc["Datasets"]} == {"TRAIN", "TEST"}


def test_update_dataset_entries_adds_and_replaces_by_source_ref(
    client: Any, bccd_buckets: Path
) -> None:
    _, dataset = _project_with_train(client)
    first = json.loads(client.list_dataset_entries(DatasetArn=dataset)["DatasetEntries"][0])
    first["cell-labels"]["annotations"] = first["cell-labels"]["annotations"][:1]
    new = dict(first, **{"source-ref": "s3://bccd-demo/images/extra.jpg"})
    blob = (json.dumps(first) + "\n" + json.dumps(new) + "\n").encode()
    with pytest.raises(ClientError) as exc:  # checked as CreateDataset checks: the image exists
        client.update_dataset_entries(DatasetArn=dataset, Changes={"GroundTruth": blob})
    assert _error(exc) == "InvalidParameterException"
    assert "line 2: ERROR_INVALID_IMAGE" in exc.value.response["Error"]["Message"]
    images = bccd_buckets / "bccd-demo" / "images"
    shutil.copyfile(images / first["source-ref"].rsplit("/", 1)[1], images / "extra.jpg")
    client.update_dataset_entries(DatasetArn=dataset, Changes={"GroundTruth": blob})
    stats = client.describe_dataset(DatasetArn=dataset)["DatasetDescription"]
    assert stats["DatasetStats"]["TotalEntries"] == 13
    assert stats["Status"] == "UPDATE_COMPLETE"
    replaced = client.list_dataset_entries(
        DatasetArn=dataset, SourceRefContains=first["source-ref"]
    )
    assert len(json.loads(replaced["DatasetEntries"][0])["cell-labels"]["annotations"]) == 1


@pytest.mark.parametrize(
    ("operation", "kwargs", "code"),
    [
        (
            "describe_dataset",
            {"DatasetArn": "arn:aws:rekognition:local:000000000000:project/x/dataset/train/1"},
            "ResourceNotFoundException",
        ),
        (
            "describe_project_versions",
            {"ProjectArn": "arn:aws:rekognition:local:000000000000:project/nope/123"},
            "ResourceNotFoundException",
        ),
        (
            "start_project_version",
            {
                "ProjectVersionArn": "arn:aws:rekognition:local:000000000000:project/x/version/v/1",
                "MinInferenceUnits": 1,
            },
            "ResourceNotFoundException",
        ),
        (
            "detect_custom_labels",
            {
                "ProjectVersionArn": "arn:aws:rekognition:local:000000000000:project/x/version/v/1",
                "Image": {"Bytes": b"\xff\xd8\xff"},
            },
            "ResourceNotFoundException",
        ),
        (
            "delete_project",
            {"ProjectArn": "arn:aws:rekognition:local:000000000000:project/a/1"},
            "ResourceNotFoundException",
        ),
        (
            "create_dataset",
            {
                "ProjectArn": "arn:aws:rekognition:local:000000000000:project/nope/123",
                "DatasetType": "TRAIN",
                "DatasetSource": {
                    "GroundTruthManifest": {"S3Object": {"Bucket": "no-such-bucket", "Name": "m"}}
                },
            },
            "InvalidS3ObjectException",
        ),
    ],
)
def test_unknown_resources(client: Any, operation: str, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as exc:
        getattr(client, operation)(**kwargs)
    assert _error(exc) == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_create_version_without_training_data_is_refused(client: Any) -> None:
    project = client.create_project(ProjectName="empty")["ProjectArn"]
    with pytest.raises(ClientError) as exc:
        client.create_project_version(
            ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": "bccd-demo"}
        )
    assert _error(exc) == "ResourceNotReadyException"


def test_wrong_signature_and_unsigned_requests_are_denied(live: Live) -> None:
    with pytest.raises(ClientError) as exc:
        make_client(live.url, secret="not-the-secret").describe_projects()
    assert _error(exc) == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:
        make_client(live.url, key="AKIDSOMEONEELSE").describe_projects()
    assert _error(exc) == "AccessDeniedException"
    response = httpx.post(
        live.url + "/",
        headers={
            "X-Amz-Target": "RekognitionService.DescribeProjects",
            "Content-Type": "application/x-amz-json-1.1",
        },
        content=b"{}",
    )
    assert response.status_code == 400
    assert response.json()["__type"] == "AccessDeniedException"


def test_malformed_requests_are_invalid_parameters(live: Live, client: Any) -> None:
    with pytest.raises(ClientError) as exc:
        client.create_project(ProjectName="bad name!")
    assert _error(exc) == "InvalidParameterException"
    # a field boto3 would never send is refused by botocore's validator on the server side
    response = httpx.post(
        live.url + "/",
        headers={"X-Amz-Target": "RekognitionService.Nope"},
        content=b"{}",
    )
    assert response.json()["__type"] in {"InvalidParameterException", "AccessDeniedException"}
