"""The catalog on a real PostgreSQL server: the use cases through boto3's rekognition client
against an app whose ``database_url`` is ``postgresql+psycopg://...`` (see conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sqlalchemy import inspect, select

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.service import Context, ServiceSettings, open_context
from customlabels.service.catalog import Catalog, DatasetEntryRow, VersionRow, VersionStatus
from customlabels.service.projects import get_project

KEY, SECRET = "AKIDCUSTOMLABELSPG", "postgres-test-secret"
MANIFEST = {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}


@pytest.fixture
def pg_ctx(tmp_path: Path, bccd_buckets: Path, postgres_url: str) -> Iterator[Context]:
    settings = ServiceSettings(
        home=tmp_path / "home",
        buckets_dir=bccd_buckets,
        database_url=postgres_url,
        access_key_id=KEY,
        secret_access_key=SECRET,
        train_time_budget_s=20,
    )
    ctx = open_context(settings)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def client(pg_ctx: Context) -> Iterator[Any]:
    with serve_in_thread(create_app(pg_ctx.settings, pg_ctx)) as url:
        yield boto3.client(
            "rekognition",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            config=Config(retries={"max_attempts": 1}, read_timeout=60),
        )


def _error(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _train_dataset(client: Any, project: str) -> str:
    return str(
        client.create_dataset(
            ProjectArn=project,
            DatasetType="TRAIN",
            DatasetSource={"GroundTruthManifest": {"S3Object": MANIFEST}},
        )["DatasetArn"]
    )


def test_the_context_really_uses_postgresql(pg_ctx: Context, postgres_url: str) -> None:
    engine = pg_ctx.catalog.engine
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
    tables = set(inspect(engine).get_table_names())
    assert {"projects", "datasets", "dataset_entries", "project_versions"} <= tables
    # opening a second catalog on the same database keeps the schema (create_all is idempotent)
    again = Catalog(postgres_url)
    try:
        assert set(inspect(again.engine).get_table_names()) == tables
    finally:
        again.close()


def test_projects_create_describe_delete(client: Any) -> None:
    arns = [client.create_project(ProjectName=n)["ProjectArn"] for n in ("cells", "bees")]
    described = client.describe_projects()["ProjectDescriptions"]
    assert [p["ProjectArn"] for p in described] == arns[::-1]  # newest first
    assert described[0]["Status"] == "CREATED"
    page = client.describe_projects(MaxResults=1)
    assert len(page["ProjectDescriptions"]) == 1 and page["NextToken"]
    with pytest.raises(ClientError) as exc:
        client.create_project(ProjectName="cells")
    assert _error(exc) == "ResourceInUseException"
    assert client.delete_project(ProjectArn=arns[0])["Status"] == "DELETING"
    left = client.describe_projects()["ProjectDescriptions"]
    assert [p["ProjectArn"] for p in left] == [arns[1]]


def test_datasets_from_a_manifest(client: Any, pg_ctx: Context) -> None:
    project = client.create_project(ProjectName="cells")["ProjectArn"]
    dataset = _train_dataset(client, project)
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
    page = client.list_dataset_entries(DatasetArn=dataset, MaxResults=5)
    rest = client.list_dataset_entries(DatasetArn=dataset, NextToken=page["NextToken"])
    lines = page["DatasetEntries"] + rest["DatasetEntries"]
    refs = [json.loads(e)["source-ref"] for e in lines]
    assert len(set(refs)) == 12
    # the rows hold the JSON lines and per-label counts exactly as written
    with pg_ctx.catalog.session() as s:
        rows = s.scalars(select(DatasetEntryRow).order_by(DatasetEntryRow.id)).all()
        assert [r.line for r in rows] == lines
        assert all(sum(json.loads(r.labels).values()) == r.num_boxes > 0 for r in rows)
    only = client.list_dataset_entries(DatasetArn=dataset, SourceRefContains="00001.jpg")
    assert len(only["DatasetEntries"]) == 1
    # replace one entry by source-ref, copy to TEST, then distribute into an empty TEST
    first = json.loads(lines[0])
    first["note"] = "edited"
    client.update_dataset_entries(
        DatasetArn=dataset, Changes={"GroundTruth": json.dumps(first).encode()}
    )
    edited = client.list_dataset_entries(DatasetArn=dataset, SourceRefContains=first["source-ref"])
    assert json.loads(edited["DatasetEntries"][0])["note"] == "edited"
    test = client.create_dataset(
        ProjectArn=project, DatasetType="TEST", DatasetSource={"DatasetArn": dataset}
    )["DatasetArn"]
    copied = client.describe_dataset(DatasetArn=test)["DatasetDescription"]["DatasetStats"]
    assert copied["TotalEntries"] == 12
    client.delete_dataset(DatasetArn=test)
    test = client.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    client.distribute_dataset_entries(Datasets=[{"Arn": dataset}, {"Arn": test}])
    train_n = client.describe_dataset(DatasetArn=dataset)["DatasetDescription"]["DatasetStats"]
    test_n = client.describe_dataset(DatasetArn=test)["DatasetDescription"]["DatasetStats"]
    assert train_n["TotalEntries"] + test_n["TotalEntries"] == 12
    assert (train_n["TotalEntries"], test_n["TotalEntries"]) in {(10, 2), (9, 3)}
    # deleting the project takes its datasets and entries with it (foreign keys enforced)
    client.delete_project(ProjectArn=project)
    with pg_ctx.catalog.session() as s:
        assert s.scalars(select(DatasetEntryRow)).first() is None


def test_model_version_rows(client: Any, pg_ctx: Context) -> None:
    project = client.create_project(ProjectName="cells")["ProjectArn"]
    with pytest.raises(ClientError) as exc:  # no training data yet
        client.create_project_version(
            ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": "bccd-demo"}
        )
    assert _error(exc) == "ResourceNotReadyException"
    # a completed version row, as training (or an import) leaves it: nullable numbers, JSON tags
    model_dir = pg_ctx.settings.models_dir / "cells" / "v1" / "model"
    model_dir.mkdir(parents=True)
    with pg_ctx.catalog.session() as s:
        row = VersionRow(
            project_id=get_project(s, project).id,
            name="v1",
            arn=f"{project.rsplit('/', 1)[0]}/version/v1/1764270000123",
            created_at=1764270000.123456,
            status=VersionStatus.TRAINING_COMPLETED.value,
            model_dir=str(model_dir),
            training_started_at=1764270000.5,
            training_end=1764270321.25,
            f1_score=0.8125,
            min_units=None,
            tags=json.dumps({"team": "lab", "ünïcode": "✓"}),
        )
        s.add(row)
        version = row.arn
    with pg_ctx.catalog.session() as s:
        back = s.scalars(select(VersionRow).where(VersionRow.arn == version)).one()
        assert back.created_at == 1764270000.123456  # double precision, not a 4-byte float
        assert back.tag_map == {"team": "lab", "ünïcode": "✓"}
        assert back.min_units is None and back.pid is None
    described = client.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]
    assert [d["ProjectVersionArn"] for d in described] == [version]
    assert described[0]["Status"] == "TRAINING_COMPLETED"
    assert described[0]["EvaluationResult"]["F1Score"] == pytest.approx(0.8125)
    with pytest.raises(ClientError) as exc:
        client.delete_project(ProjectArn=project)
    assert _error(exc) == "ResourceInUseException"
    assert client.delete_project_version(ProjectVersionArn=version)["Status"] == "DELETING"
    assert not model_dir.parent.exists()
    assert client.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"] == []
    client.delete_project(ProjectArn=project)


def _edit_copy_distribute(ctx: Context) -> tuple[list[str], list[str]]:
    """Create TRAIN from the manifest, edit a few entries (PostgreSQL moves updated rows to the
    end of the table), copy TRAIN to a project's TEST, and distribute TRAIN into an empty TEST.
    Returns the copied entries in order and the source-refs that went to TEST."""
    from customlabels.service import datasets, projects

    source = {"GroundTruthManifest": {"S3Object": MANIFEST}}
    arn = projects.create_project(ctx, "cells")["ProjectArn"]
    train = datasets.create_dataset(ctx, arn, "TRAIN", source)["DatasetArn"]
    lines = datasets.list_dataset_entries(ctx, train)["DatasetEntries"]
    edited = [{**json.loads(line), "note": "edited"} for line in lines[:6]]
    blob = "".join(json.dumps(e) + "\n" for e in edited).encode()
    datasets.update_dataset_entries(ctx, train, {"GroundTruth": blob})
    other = projects.create_project(ctx, "copy")["ProjectArn"]
    copy = datasets.create_dataset(ctx, other, "TEST", {"DatasetArn": train})["DatasetArn"]
    copied = datasets.list_dataset_entries(ctx, copy)["DatasetEntries"]
    test = datasets.create_dataset(ctx, arn, "TEST")["DatasetArn"]
    datasets.distribute_dataset_entries(ctx, [{"Arn": train}, {"Arn": test}])
    moved = datasets.list_dataset_entries(ctx, test)["DatasetEntries"]
    return copied, sorted(json.loads(line)["source-ref"] for line in moved)


def test_copy_and_distribute_agree_with_sqlite(
    tmp_path: Path, bccd_buckets: Path, pg_ctx: Context
) -> None:
    settings = ServiceSettings(home=tmp_path / "sqlite-home", buckets_dir=bccd_buckets)
    lite = open_context(settings, recover=False)
    try:
        expected = _edit_copy_distribute(lite)
    finally:
        lite.close()
    assert lite.catalog.engine.dialect.name == "sqlite"
    copied, moved = _edit_copy_distribute(pg_ctx)
    assert len(copied) == 12 and moved
    assert (copied, moved) == expected
