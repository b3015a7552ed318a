"""Nothing silently ignored: each input member of each served operation, as botocore's
``rekognition`` model defines it, is honoured (a check shows what it changes) or refused with
the service's error.

:data:`FIELDS` says which, per operation and member path (``A.B`` into a structure, ``A[].B``
into a list of structures; a refused member is refused whole, so its members are not listed).
:func:`test_the_table_covers_the_model` walks the model, so a member a new botocore adds (or an
operation served without a row here) fails until someone decides how it is handled, and
:func:`test_each_member_has_its_effect_or_refusal` runs one check per operation against a live
server (boto3 unchanged) and fails unless every member in the table was exercised as stated.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from customlabels.api import create_app
from customlabels.api.awsjson import OPERATIONS
from customlabels.api.server import serve_in_thread
from customlabels.core.model_card import ModelCard
from customlabels.core.uris import s3_key_of
from customlabels.service import Context, ServiceSettings, open_context
from customlabels.service import projects as projects_uc
from customlabels.service import versions as versions_uc

from ._live import KEY, SECRET, make_client

E, R = "effect", "refused"
FIELDS: dict[str, dict[str, str]] = {
    "CreateProject": {"ProjectName": E, "Feature": R, "AutoUpdate": R, "Tags": E},
    "DescribeProjects": {"NextToken": E, "MaxResults": E, "ProjectNames": E, "Features": E},
    "DeleteProject": {"ProjectArn": E},
    "CreateDataset": {
        "DatasetSource.GroundTruthManifest.S3Object.Bucket": E,
        "DatasetSource.GroundTruthManifest.S3Object.Name": E,
        "DatasetSource.GroundTruthManifest.S3Object.Version": R,
        "DatasetSource.DatasetArn": E,
        "DatasetType": E,
        "ProjectArn": E,
        "Tags": E,
    },
    "DescribeDataset": {"DatasetArn": E},
    "ListDatasetEntries": {
        "DatasetArn": E,
        "ContainsLabels": E,
        "Labeled": E,
        "SourceRefContains": E,
        "HasErrors": E,
        "NextToken": E,
        "MaxResults": E,
    },
    "ListDatasetLabels": {"DatasetArn": E, "NextToken": E, "MaxResults": E},
    "UpdateDatasetEntries": {"DatasetArn": E, "Changes.GroundTruth": E},
    "DistributeDatasetEntries": {"Datasets[].Arn": E},
    "DeleteDataset": {"DatasetArn": E},
    "CreateProjectVersion": {
        "ProjectArn": E,
        "VersionName": E,
        "OutputConfig.S3Bucket": E,
        "OutputConfig.S3KeyPrefix": E,
        "TrainingData.Assets": R,
        "TestingData.Assets": R,
        "TestingData.AutoCreate": E,
        "Tags": E,
        "KmsKeyId": R,
        "VersionDescription": E,
        "FeatureConfig": R,
    },
    "DescribeProjectVersions": {
        "ProjectArn": E,
        "VersionNames": E,
        "NextToken": E,
        "MaxResults": E,
    },
    "StartProjectVersion": {"ProjectVersionArn": E, "MinInferenceUnits": E, "MaxInferenceUnits": E},
    "StopProjectVersion": {"ProjectVersionArn": E},
    "DeleteProjectVersion": {"ProjectVersionArn": E},
    "DetectCustomLabels": {
        "ProjectVersionArn": E,
        "Image.Bytes": E,
        "Image.S3Object.Bucket": E,
        "Image.S3Object.Name": E,
        "Image.S3Object.Version": R,
        "MaxResults": E,
        "MinConfidence": E,
    },
    "TagResource": {"ResourceArn": E, "Tags": E},
    "UntagResource": {"ResourceArn": E, "TagKeys": E},
    "ListTagsForResource": {"ResourceArn": E},
}

UNKNOWN = "arn:aws:rekognition:local:000000000000:project/nope/1"
# The training child records its command line and fails at once: no training runs here.
RECORD_ARGV = "import json, sys; open('argv.json', 'w').write(json.dumps(sys.argv)); sys.exit(3)"


def _paths(shape: Any, table: dict[str, str], prefix: str = "") -> set[str]:
    """Leaf member paths of ``shape``; a member the table refuses whole is not walked into."""
    out: set[str] = set()
    for name, member in shape.members.items():
        path = prefix + name
        if table.get(path) == R:
            out.add(path)
        elif member.type_name == "structure":
            out |= _paths(member, table, path + ".")
        elif member.type_name == "list" and member.member.type_name == "structure":
            out |= _paths(member.member, table, path + "[].")
        else:
            out.add(path)
    return out


def test_the_table_covers_the_model() -> None:
    model = botocore.session.get_session().get_service_model("rekognition")
    assert set(FIELDS) == set(OPERATIONS)
    for operation, table in FIELDS.items():
        shape = model.operation_model(operation).input_shape
        assert _paths(shape, table) == set(table), operation


# --- the live world -------------------------------------------------------------------------
@dataclass
class World:
    client: Any
    ctx: Context
    root: Path
    project: str
    train: str
    running: str
    image: bytes


@dataclass
class Probe:
    """Records each member exercised, and how; a check that fails raises at once."""

    operation: str
    done: dict[str, str] = field(default_factory=dict)

    def effect(self, member: str, ok: bool) -> None:
        assert ok, f"{self.operation}.{member}: no effect"
        self.done[member] = E

    def refused(
        self, member: str, call: Callable[[], Any], code: str = "InvalidParameterException"
    ) -> None:
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["Error"]["Code"] == code, f"{self.operation}.{member}"
        self.done[member] = R

    def selects(self, member: str, call: Callable[[], Any]) -> None:
        """The member names the resource acted on: an unknown one is not found."""
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException", member
        self.done[member] = E


def _code(call: Callable[[], Any]) -> str:
    """The error code ``call`` fails with ("" when it does not fail)."""
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return ""


def _wait(client: Any, project: str, name: str, statuses: set[str]) -> dict[str, Any]:
    for _ in range(120):
        (desc,) = client.describe_project_versions(ProjectArn=project, VersionNames=[name])[
            "ProjectVersionDescriptions"
        ]
        if desc["Status"] in statuses:
            return dict(desc)
        time.sleep(0.25)
    raise AssertionError(f"{name} never reached {statuses}")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    bccd_buckets: Path,
    bees_manifest: Path,
    tiny_detector_dir: Path,
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("fields")
    shutil.copytree(bccd_buckets / "bccd-demo", root / "buckets" / "bccd-demo")
    image_ref = ModelCard.load(tiny_detector_dir).dataset["images"]["train"][0]
    image = (bees_manifest.parent / s3_key_of(image_ref)).read_bytes()  # it finds bees here
    (root / "buckets" / "bccd-demo" / "bee.jpg").write_bytes(image)
    settings = ServiceSettings(
        home=root / "home",
        buckets_dir=root / "buckets",
        access_key_id=KEY,
        secret_access_key=SECRET,
        train_command=[sys.executable, "-c", RECORD_ARGV],
    )
    ctx = open_context(settings)
    try:
        with serve_in_thread(create_app(settings, ctx)) as url:
            client = make_client(url)
            project = client.create_project(ProjectName="world")["ProjectArn"]
            source = {"S3Object": {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}}
            train = client.create_dataset(
                ProjectArn=project,
                DatasetType="TRAIN",
                DatasetSource={"GroundTruthManifest": source},
            )["DatasetArn"]
            bees = projects_uc.create_project(ctx, "bees")["ProjectArn"]
            running = versions_uc.import_model_version(ctx, bees, "v1", tiny_detector_dir)
            arn = running["ProjectVersionArn"]
            client.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
            _wait(client, bees, "v1", {"RUNNING"})
            yield World(client, ctx, root, project, train, arn, image)
    finally:
        ctx.close()


# --- one check per operation ----------------------------------------------------------------
def _create_project(w: World, p: Probe) -> None:
    c = w.client
    arn = c.create_project(ProjectName="p-tags", Tags={"team": "lab"})["ProjectArn"]
    p.effect(
        "ProjectName",
        c.describe_projects(ProjectNames=["p-tags"])["ProjectDescriptions"][0]["ProjectArn"] == arn,
    )
    p.effect("Tags", c.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "lab"})
    p.refused("Feature", lambda: c.create_project(ProjectName="p-f", Feature="CONTENT_MODERATION"))
    p.refused("AutoUpdate", lambda: c.create_project(ProjectName="p-a", AutoUpdate="ENABLED"))


def _describe_projects(w: World, p: Probe) -> None:
    c = w.client
    for name in ("dp-a", "dp-b"):
        c.create_project(ProjectName=name)
    first = c.describe_projects(ProjectNames=["dp-a", "dp-b"], MaxResults=1)
    p.effect("MaxResults", len(first["ProjectDescriptions"]) == 1 and "NextToken" in first)
    rest = c.describe_projects(ProjectNames=["dp-a", "dp-b"], NextToken=first["NextToken"])
    both = {d["ProjectArn"] for d in first["ProjectDescriptions"] + rest["ProjectDescriptions"]}
    p.effect("NextToken", len(both) == 2)
    p.effect(
        "ProjectNames", len(c.describe_projects(ProjectNames=["dp-a"])["ProjectDescriptions"]) == 1
    )
    moderation = c.describe_projects(Features=["CONTENT_MODERATION"])["ProjectDescriptions"]
    labels = c.describe_projects(Features=["CUSTOM_LABELS"])["ProjectDescriptions"]
    p.effect("Features", moderation == [] and len(labels) >= 2)


def _delete_project(w: World, p: Probe) -> None:
    arn = w.client.create_project(ProjectName="to-delete")["ProjectArn"]
    p.selects("ProjectArn", lambda: w.client.delete_project(ProjectArn=UNKNOWN))
    w.client.delete_project(ProjectArn=arn)
    p.effect(
        "ProjectArn",
        not w.client.describe_projects(ProjectNames=["to-delete"])["ProjectDescriptions"],
    )


def _create_dataset(w: World, p: Probe) -> None:
    c = w.client
    project = c.create_project(ProjectName="ds")["ProjectArn"]
    s3 = {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}
    p.refused(
        "DatasetSource.GroundTruthManifest.S3Object.Version",
        lambda: c.create_dataset(
            ProjectArn=project,
            DatasetType="TRAIN",
            DatasetSource={"GroundTruthManifest": {"S3Object": {**s3, "Version": "v2"}}},
        ),
    )

    def from_manifest(**s3_object: str) -> Callable[[], Any]:
        source = {"GroundTruthManifest": {"S3Object": {**s3, **s3_object}}}
        return lambda: c.create_dataset(
            ProjectArn=project, DatasetType="TRAIN", DatasetSource=source
        )

    member = "DatasetSource.GroundTruthManifest.S3Object."
    missing = "InvalidS3ObjectException"
    p.effect(member + "Bucket", _code(from_manifest(Bucket="no-bucket")) == missing)
    p.effect(member + "Name", _code(from_manifest(Name="nope.manifest")) == missing)
    p.selects("ProjectArn", lambda: c.create_dataset(ProjectArn=UNKNOWN, DatasetType="TRAIN"))
    test = c.create_dataset(
        ProjectArn=project,
        DatasetType="TEST",
        DatasetSource={"DatasetArn": w.train},
        Tags={"k": "v"},
    )["DatasetArn"]
    stats = c.describe_dataset(DatasetArn=test)["DatasetDescription"]["DatasetStats"]
    p.effect("DatasetSource.DatasetArn", stats["TotalEntries"] == 12)
    p.effect("DatasetType", "/dataset/test/" in test)
    p.effect("Tags", c.list_tags_for_resource(ResourceArn=test)["Tags"] == {"k": "v"})


def _describe_dataset(w: World, p: Probe) -> None:
    stats = w.client.describe_dataset(DatasetArn=w.train)["DatasetDescription"]["DatasetStats"]
    p.effect("DatasetArn", stats["TotalEntries"] == 12)


def _project_with_train(w: World, name: str) -> tuple[str, str]:
    """A new project whose TRAIN dataset is a copy of the world's (12 BCCD lines)."""
    project = w.client.create_project(ProjectName=name)["ProjectArn"]
    arn = w.client.create_dataset(
        ProjectArn=project, DatasetType="TRAIN", DatasetSource={"DatasetArn": w.train}
    )["DatasetArn"]
    return project, arn


def _list_dataset_entries(w: World, p: Probe) -> None:
    c = w.client
    _, arn = _project_with_train(w, "entries")
    first = json.loads(c.list_dataset_entries(DatasetArn=arn)["DatasetEntries"][0])
    empty = dict(first, **{"cell-labels": {**first["cell-labels"], "annotations": []}})
    c.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": json.dumps(empty).encode()})

    def count(**kw: Any) -> int:
        return len(c.list_dataset_entries(DatasetArn=arn, MaxResults=100, **kw)["DatasetEntries"])

    p.effect("DatasetArn", count() == 12)
    p.effect("Labeled", count(Labeled=False) == 1 and count(Labeled=True) == 11)
    p.effect("ContainsLabels", count(ContainsLabels=["Platelets"]) < 11)
    p.effect("SourceRefContains", count(SourceRefContains=first["source-ref"][-10:]) == 1)
    p.effect("HasErrors", count(HasErrors=True) == 0 and count(HasErrors=False) == 12)
    page = c.list_dataset_entries(DatasetArn=arn, MaxResults=5)
    p.effect("MaxResults", len(page["DatasetEntries"]) == 5)
    rest = c.list_dataset_entries(DatasetArn=arn, NextToken=page["NextToken"])
    p.effect("NextToken", len(set(page["DatasetEntries"] + rest["DatasetEntries"])) == 12)


def _list_dataset_labels(w: World, p: Probe) -> None:
    c = w.client
    every = c.list_dataset_labels(DatasetArn=w.train)["DatasetLabelDescriptions"]
    p.effect("DatasetArn", {d["LabelName"] for d in every} == {"RBC", "WBC", "Platelets"})
    page = c.list_dataset_labels(DatasetArn=w.train, MaxResults=2)
    p.effect("MaxResults", len(page["DatasetLabelDescriptions"]) == 2)
    rest = c.list_dataset_labels(DatasetArn=w.train, NextToken=page["NextToken"])
    p.effect("NextToken", len(rest["DatasetLabelDescriptions"]) == 1)


def _update_dataset_entries(w: World, p: Probe) -> None:
    c = w.client
    project = c.create_project(ProjectName="update")["ProjectArn"]
    arn = c.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    line = c.list_dataset_entries(DatasetArn=w.train, MaxResults=1)["DatasetEntries"][0]
    p.selects(
        "DatasetArn",
        lambda: c.update_dataset_entries(
            DatasetArn=UNKNOWN.replace("/1", "/dataset/train/1"),
            Changes={"GroundTruth": line.encode()},
        ),
    )
    c.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": line.encode()})
    stats = c.describe_dataset(DatasetArn=arn)["DatasetDescription"]["DatasetStats"]
    p.effect("Changes.GroundTruth", stats["TotalEntries"] == 1)


def _distribute_dataset_entries(w: World, p: Probe) -> None:
    c = w.client
    project, train = _project_with_train(w, "distribute")
    test = c.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    c.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    moved = c.describe_dataset(DatasetArn=test)["DatasetDescription"]["DatasetStats"]
    p.effect("Datasets[].Arn", moved["TotalEntries"] > 0)


def _delete_dataset(w: World, p: Probe) -> None:
    c = w.client
    project = c.create_project(ProjectName="ds-delete")["ProjectArn"]
    arn = c.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    c.delete_dataset(DatasetArn=arn)
    p.selects("DatasetArn", lambda: c.describe_dataset(DatasetArn=arn))


def _create_project_version(w: World, p: Probe) -> None:
    c = w.client
    project, _ = _project_with_train(w, "train")
    c.create_dataset(ProjectArn=project, DatasetType="TEST", DatasetSource={"DatasetArn": w.train})
    base: dict[str, Any] = {"ProjectArn": project, "OutputConfig": {}}
    manifest = {"GroundTruthManifest": {"S3Object": {"Bucket": "bccd-demo", "Name": "m"}}}
    p.refused(
        "TrainingData.Assets",
        lambda: c.create_project_version(
            **base, VersionName="x", TrainingData={"Assets": [manifest]}
        ),
    )
    p.refused(
        "TestingData.Assets",
        lambda: c.create_project_version(
            **base, VersionName="x", TestingData={"Assets": [manifest]}
        ),
    )
    p.refused(
        "KmsKeyId", lambda: c.create_project_version(**base, VersionName="x", KmsKeyId="alias/key")
    )
    p.refused(
        "FeatureConfig",
        lambda: c.create_project_version(
            **base,
            VersionName="x",
            FeatureConfig={"ContentModeration": {"ConfidenceThreshold": 50}},
        ),
    )
    p.selects(
        "ProjectArn",
        lambda: c.create_project_version(ProjectArn=UNKNOWN, VersionName="x", OutputConfig={}),
    )
    no_bucket = {"S3Bucket": "no-such-bucket"}
    refused = _code(
        lambda: c.create_project_version(**base | {"OutputConfig": no_bucket}, VersionName="x")
    )
    assert refused == "InvalidS3ObjectException"
    c.create_project_version(
        ProjectArn=project,
        VersionName="auto",
        OutputConfig={"S3Bucket": "bccd-demo", "S3KeyPrefix": "runs/auto"},
        TestingData={"AutoCreate": True},
        Tags={"customlabels:time-budget": "90s", "team": "lab"},
        VersionDescription="first try",
    )
    c.create_project_version(**base, VersionName="given", TestingData={"AutoCreate": False})
    auto = _wait(c, project, "auto", {"TRAINING_FAILED"})
    _wait(c, project, "given", {"TRAINING_FAILED"})
    p.effect("VersionName", auto["ProjectVersionArn"].split("/")[3] == "auto")
    p.effect("OutputConfig.S3Bucket", auto["OutputConfig"]["S3Bucket"] == "bccd-demo")
    p.effect("OutputConfig.S3KeyPrefix", auto["OutputConfig"]["S3KeyPrefix"] == "runs/auto/")
    p.effect("VersionDescription", auto["VersionDescription"] == "first try")
    p.effect(
        "Tags",
        c.list_tags_for_resource(ResourceArn=auto["ProjectVersionArn"])["Tags"]["team"] == "lab",
    )
    models = w.ctx.settings.models_dir / "train"
    argv_auto = json.loads((models / "auto" / "argv.json").read_text())
    argv_given = json.loads((models / "given" / "argv.json").read_text())
    p.effect("TestingData.AutoCreate", "--test" not in argv_auto and "--test" in argv_given)
    assert argv_auto[argv_auto.index("--time-budget") + 1] == "90"  # the tag's own effect


def _describe_project_versions(w: World, p: Probe) -> None:
    c = w.client
    project = c.create_project(ProjectName="many")["ProjectArn"]
    for name in ("a", "b"):
        versions_uc.import_model_version(w.ctx, project, name, w.ctx.pool.get(w.running).model_dir)
    p.selects("ProjectArn", lambda: c.describe_project_versions(ProjectArn=UNKNOWN))
    page = c.describe_project_versions(ProjectArn=project, MaxResults=1)
    p.effect("MaxResults", len(page["ProjectVersionDescriptions"]) == 1)
    rest = c.describe_project_versions(ProjectArn=project, NextToken=page["NextToken"])
    p.effect("NextToken", len(rest["ProjectVersionDescriptions"]) == 1)
    only = c.describe_project_versions(ProjectArn=project, VersionNames=["b"])
    p.effect(
        "VersionNames",
        [d["ProjectVersionArn"].split("/")[3] for d in only["ProjectVersionDescriptions"]] == ["b"],
    )


def _start_stop_delete(w: World, p: Probe, which: str) -> None:
    c = w.client
    project = c.create_project(ProjectName=f"start-{which}")["ProjectArn"]
    model_dir = w.ctx.pool.get(w.running).model_dir
    arn = versions_uc.import_model_version(w.ctx, project, "v", model_dir)["ProjectVersionArn"]
    unknown = arn.replace("/version/v/", "/version/nope/")
    if which == "start":
        p.selects(
            "ProjectVersionArn",
            lambda: c.start_project_version(ProjectVersionArn=unknown, MinInferenceUnits=1),
        )
    c.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=2, MaxInferenceUnits=3)
    desc = _wait(c, project, "v", {"RUNNING"})
    if which == "start":
        p.effect(
            "MinInferenceUnits", desc["MinInferenceUnits"] == 2 and w.ctx.pool.get(arn).units == 2
        )
        p.effect("MaxInferenceUnits", desc["MaxInferenceUnits"] == 3)
    c.stop_project_version(ProjectVersionArn=arn)
    if which == "stop":
        p.effect("ProjectVersionArn", _wait(c, project, "v", {"STOPPED"})["Status"] == "STOPPED")
    if which == "delete":
        c.delete_project_version(ProjectVersionArn=arn)
        gone = c.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]
        p.effect("ProjectVersionArn", gone == [])


def _detect_custom_labels(w: World, p: Probe) -> None:
    c = w.client

    def detect(**kw: Any) -> list[dict[str, Any]]:
        kw.setdefault("Image", {"Bytes": w.image})
        return list(c.detect_custom_labels(ProjectVersionArn=w.running, **kw)["CustomLabels"])

    unknown = w.running.replace("/version/v1/", "/version/nope/")
    p.selects(
        "ProjectVersionArn",
        lambda: c.detect_custom_labels(ProjectVersionArn=unknown, Image={"Bytes": w.image}),
    )
    everything = detect(MinConfidence=0)
    p.effect("Image.Bytes", len(everything) > 1)
    # calibrated confidences are a step function of the raw score (many detections may share
    # one value) and the response rounds them: cut between the two highest distinct values
    values = sorted({label["Confidence"] for label in everything}, reverse=True)
    assert len(values) >= 2, everything
    confident = detect(MinConfidence=(values[0] + values[1]) / 2)
    p.effect("MinConfidence", 1 <= len(confident) < len(everything))
    p.effect("MaxResults", len(detect(MinConfidence=0, MaxResults=1)) == 1)
    s3 = {"Bucket": "bccd-demo", "Name": "bee.jpg"}
    from_s3 = detect(Image={"S3Object": s3}, MinConfidence=0)
    p.effect("Image.S3Object.Bucket", from_s3 == everything)
    missing = _code(lambda: detect(Image={"S3Object": {**s3, "Name": "no.jpg"}}))
    p.effect("Image.S3Object.Name", missing == "InvalidS3ObjectException")
    p.refused("Image.S3Object.Version", lambda: detect(Image={"S3Object": {**s3, "Version": "3"}}))


def _tag_resource(w: World, p: Probe) -> None:
    c = w.client
    p.selects("ResourceArn", lambda: c.tag_resource(ResourceArn=UNKNOWN, Tags={"a": "1"}))
    c.tag_resource(ResourceArn=w.train, Tags={"a": "1", "b": "2"})
    p.effect("Tags", c.list_tags_for_resource(ResourceArn=w.train)["Tags"] == {"a": "1", "b": "2"})
    reserved = _code(lambda: c.tag_resource(ResourceArn=w.train, Tags={"aws:x": "1"}))
    assert reserved == "InvalidParameterException"


def _untag_resource(w: World, p: Probe) -> None:
    c = w.client
    p.selects("ResourceArn", lambda: c.untag_resource(ResourceArn=UNKNOWN, TagKeys=["a"]))
    c.tag_resource(ResourceArn=w.train, Tags={"x": "1", "y": "2"})
    c.untag_resource(ResourceArn=w.train, TagKeys=["x"])
    tags = c.list_tags_for_resource(ResourceArn=w.train)["Tags"]
    p.effect("TagKeys", "x" not in tags and tags["y"] == "2")


def _list_tags(w: World, p: Probe) -> None:
    c = w.client
    p.selects("ResourceArn", lambda: c.list_tags_for_resource(ResourceArn=UNKNOWN))
    c.tag_resource(ResourceArn=w.project, Tags={"listed": "yes"})
    assert c.list_tags_for_resource(ResourceArn=w.project)["Tags"]["listed"] == "yes"


CHECKS: dict[str, Callable[[World, Probe], None]] = {
    "CreateProject": _create_project,
    "DescribeProjects": _describe_projects,
    "DeleteProject": _delete_project,
    "CreateDataset": _create_dataset,
    "DescribeDataset": _describe_dataset,
    "ListDatasetEntries": _list_dataset_entries,
    "ListDatasetLabels": _list_dataset_labels,
    "UpdateDatasetEntries": _update_dataset_entries,
    "DistributeDatasetEntries": _distribute_dataset_entries,
    "DeleteDataset": _delete_dataset,
    "CreateProjectVersion": _create_project_version,
    "DescribeProjectVersions": _describe_project_versions,
    "StartProjectVersion": lambda w, p: _start_stop_delete(w, p, "start"),
    "StopProjectVersion": lambda w, p: _start_stop_delete(w, p, "stop"),
    "DeleteProjectVersion": lambda w, p: _start_stop_delete(w, p, "delete"),
    "DetectCustomLabels": _detect_custom_labels,
    "TagResource": _tag_resource,
    "UntagResource": _untag_resource,
    "ListTagsForResource": _list_tags,
}


@pytest.mark.parametrize("operation", sorted(FIELDS))
def test_each_member_has_its_effect_or_refusal(world: World, operation: str) -> None:
    probe = Probe(operation)
    CHECKS[operation](world, probe)
    assert probe.done == FIELDS[operation]
