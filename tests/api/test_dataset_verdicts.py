"""One parser, one set of rules: the same bad manifest gets the same verdicts, line by line,
from ``customlabels dataset validate`` and from CreateDataset (boto3 against a live server).

The manifest mixes real BCCD lines with the two disagreements of issue 12 (a box outside the
image, an unknown ``class_id``) and every other kind of bad line and box.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.cli.main import app
from customlabels.service import ServiceSettings, open_context

from ._live import KEY, SECRET, make_client

BUCKET = "verdicts"
N_REAL = 29  # real lines; with 7 invalid lines of 35 the manifest sits on the 20 % limit


def _bad_lines(real: list[dict[str, Any]]) -> list[str]:
    """``real`` lines, some with bad boxes (one with a bad ``image_size``, which makes it
    invalid), then six lines that are invalid as a whole."""
    lines = [json.loads(json.dumps(x)) for x in real]
    box = {"class_id": 0, "left": 600, "top": 10, "width": 100, "height": 50}  # outside 640 px
    lines[1]["cell-labels"]["annotations"].append(box)
    lines[2]["cell-labels"]["annotations"].append(dict(box, class_id=7, left=10))  # unknown id
    lines[3]["cell-labels"]["annotations"].append(dict(box, left=10, width=0))  # zero area
    lines[4]["cell-labels"]["annotations"].append(dict(box, left=-3))  # negative left
    lines[5]["cell-labels"]["image_size"] = [{"width": 0, "height": 480}]  # bad image_size
    text = [json.dumps(x) for x in lines]
    first = lines[0]
    text += [
        "{not json",
        json.dumps({k: v for k, v in first.items() if k != "source-ref"}),
        json.dumps(dict(first, **{"source-ref": f"s3://{BUCKET}/images/missing.jpg"})),
        json.dumps(dict(first, **{"cell-labels-metadata": {"type": "groundtruth/other"}})),
        json.dumps(dict(first, **{"source-ref": "https://example.com/x.jpg"})),
        json.dumps(dict(first, **{"source-ref": f"s3://{BUCKET}/../outside.jpg"})),
    ]
    return text


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, bccd_manifest: Path
) -> Iterator[tuple[Any, Path]]:
    """``(boto3 client, buckets folder)``: bucket ``verdicts`` with 29 real BCCD images and two
    manifests, ``ok.manifest`` (7 of 35 lines invalid) and ``over.manifest`` (8 of 36)."""
    root = tmp_path_factory.mktemp("verdict-buckets")
    bucket = root / BUCKET
    (bucket / "images").mkdir(parents=True)
    real = [json.loads(x) for x in bccd_manifest.read_text().splitlines()[:N_REAL]]
    for line in real:
        name = line["source-ref"].rsplit("/", 1)[1]
        shutil.copyfile(bccd_manifest.parent / "images" / name, bucket / "images" / name)
        line["source-ref"] = f"s3://{BUCKET}/images/{name}"
    lines = _bad_lines(real)
    (bucket / "ok.manifest").write_text("\n".join(lines) + "\n")
    (bucket / "over.manifest").write_text("\n".join([*lines, "[]"]) + "\n")
    settings = ServiceSettings(
        home=root / "home", buckets_dir=root, access_key_id=KEY, secret_access_key=SECRET
    )
    ctx = open_context(settings)
    try:
        with serve_in_thread(create_app(settings, ctx)) as url:
            yield make_client(url), root
    finally:
        ctx.close()


def _validate(manifest: Path, root: Path, annotated: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        app,
        [
            "dataset",
            "validate",
            str(manifest),
            "--json",
            "--bucket-map",
            f"{BUCKET}={root / BUCKET}",
            "--annotated",
            str(annotated),
        ],
    )
    return result.exit_code, json.loads(result.stdout)


def _verdict(line: str) -> tuple[str, list[tuple[str, str | None, str]]]:
    """A line's text without its problems, and its problems as (code, field, severity)."""
    obj = json.loads(line)
    errors = obj.pop("errors", []) if isinstance(obj, dict) and "errors" in obj else []
    problems = [(e["code"], e.get("field"), e["severity"]) for e in errors]
    return json.dumps(obj, sort_keys=True), problems


def _create(client: Any, name: str, manifest: str) -> dict[str, Any]:
    project = client.create_project(ProjectName=name)["ProjectArn"]
    arn = client.create_dataset(
        ProjectArn=project,
        DatasetType="TRAIN",
        DatasetSource={"GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": manifest}}},
    )["DatasetArn"]
    described: dict[str, Any] = client.describe_dataset(DatasetArn=arn)["DatasetDescription"]
    described["arn"] = arn
    return described


def test_cli_and_create_dataset_agree_line_by_line(world: tuple[Any, Path], tmp_path: Path) -> None:
    client, root = world
    code, summary = _validate(root / BUCKET / "ok.manifest", root, tmp_path / "annotated")
    assert code == 0 and summary["usable"]
    stats = summary["statistics"]
    assert (stats["total_json_lines"], stats["invalid_json_lines"]) == (35, 7)
    described = _create(client, "verdicts-ok", "ok.manifest")
    assert described["Status"] == "CREATE_COMPLETE"
    assert described["DatasetStats"]["TotalEntries"] == 35
    assert described["DatasetStats"]["ErrorEntries"] == stats["invalid_json_lines"]

    served = client.list_dataset_entries(DatasetArn=described["arn"], MaxResults=100)
    cli_lines = (tmp_path / "annotated").read_text().splitlines()
    assert len(served["DatasetEntries"]) == len(cli_lines) == 35
    for number, (ours, theirs) in enumerate(
        zip(cli_lines, served["DatasetEntries"], strict=True), start=1
    ):
        assert _verdict(ours) == _verdict(theirs), f"line {number}"
    # the two bug reports of issue 12, now the same on both sides
    codes = {n: {c for c, _, _ in _verdict(x)[1]} for n, x in enumerate(cli_lines, start=1)}
    assert "ERROR_INVALID_BOUNDING_BOX" in codes[2] and "ERROR_MISSING_CLASS_MAP_ID" in codes[3]
    assert {"ERROR_INVALID_JSON_LINE", "ERROR_MISSING_SOURCE_REF", "ERROR_INVALID_IMAGE"} <= set(
        c for n in range(30, 36) for c in codes[n]
    )
    bad = client.list_dataset_entries(DatasetArn=described["arn"], HasErrors=True)
    assert len(bad["DatasetEntries"]) == 7
    # the labels counted are the boxes both sides kept
    labels = client.list_dataset_labels(DatasetArn=described["arn"])["DatasetLabelDescriptions"]
    boxes = {d["LabelName"]: d["LabelStats"]["BoundingBoxCount"] for d in labels}
    assert boxes == {name: c["boxes"] for name, c in summary["labels"].items()}


def test_over_twenty_percent_invalid_fails_both_with_the_same_message(
    world: tuple[Any, Path], tmp_path: Path
) -> None:
    client, root = world
    code, summary = _validate(root / BUCKET / "over.manifest", root, tmp_path / "annotated")
    assert code == 1 and not summary["usable"]
    (error,) = [
        e for e in summary["errors"] if e["code"] == "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST"
    ]
    described = _create(client, "verdicts-over", "over.manifest")
    assert described["Status"] == "CREATE_FAILED"
    assert described["StatusMessageCode"] == "CLIENT_ERROR"
    assert described["StatusMessage"].startswith(error["message"])
    assert described["DatasetStats"]["TotalEntries"] == 0
