"""MODEL references (folder, bundle, version ARN), export to a bundle, and importing a model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from customlabels.errors import InvalidParameterError, ResourceNotFoundError, ResourceNotReadyError
from customlabels.service import (
    ServiceSettings,
    export_model,
    open_context,
    projects,
    resolve_model,
    versions,
)


@pytest.fixture(scope="module")
def bee_image(bees_manifest: Path) -> Path:
    ref = json.loads(bees_manifest.read_text().splitlines()[0])["source-ref"]
    return bees_manifest.parent / ref.split("/", 3)[3]


def _detect(model: Path, image: Path) -> dict[str, object]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "customlabels.cli.main",
            "detect",
            str(model),
            str(image),
            "--min-confidence",
            "0",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    result: dict[str, object] = json.loads(out.splitlines()[0])
    return result


def test_an_exported_bundle_detects_like_the_model_folder(
    tiny_detector_dir: Path, tmp_path: Path, bee_image: Path
) -> None:
    bundle = export_model(tiny_detector_dir, tmp_path / "bundle")
    assert sorted(p.name for p in bundle.iterdir()) == ["model.json", "model.onnx"]
    card = json.loads((bundle / "model.json").read_text())
    assert card["labels"] and set(card["thresholds"]) == set(card["labels"])
    from_bundle, from_folder = _detect(bundle, bee_image), _detect(tiny_detector_dir, bee_image)
    assert from_bundle["CustomLabels"] == from_folder["CustomLabels"]
    assert from_bundle["CustomLabels"]
    # exporting again over a bundle replaces it; over anything else is refused
    export_model(bundle, tmp_path / "bundle")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidParameterError, match="not empty"):
        export_model(bundle, tmp_path / "other")


def test_version_arns_resolve_through_the_home_catalog(
    tiny_detector_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ctx = open_context(ServiceSettings(home=home))
    try:
        project = projects.create_project(ctx, "bees")["ProjectArn"]
        arn = versions.import_model_version(ctx, project, "v1", tiny_detector_dir)[
            "ProjectVersionArn"
        ]
        desc = versions.describe_project_versions(ctx, project)["ProjectVersionDescriptions"][0]
        assert desc["Status"] == "TRAINING_COMPLETED"
    finally:
        ctx.close()
    resolved = resolve_model(arn, home)
    assert resolved.is_relative_to(home) and (resolved / "model.onnx").is_file()
    assert (export_model(arn, tmp_path / "b", home=home) / "model.onnx").is_file()
    with pytest.raises(ResourceNotFoundError):
        resolve_model(arn.replace("/v1/", "/v2/"), home)
    with pytest.raises(ResourceNotFoundError, match="no catalog"):
        resolve_model(arn, tmp_path / "elsewhere")
    with pytest.raises(InvalidParameterError, match="expected a model folder"):
        resolve_model(tmp_path)


def test_a_version_still_training_is_not_ready(tmp_path: Path, bccd_buckets: Path) -> None:
    home = tmp_path / "home"
    settings = ServiceSettings(
        home=home,
        buckets_dir=bccd_buckets,
        train_command=[sys.executable, "-c", "import time; time.sleep(30)"],
    )
    ctx = open_context(settings)
    try:
        project = projects.create_project(ctx, "cells")["ProjectArn"]
        from customlabels.service import datasets

        source = {
            "GroundTruthManifest": {
                "S3Object": {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}
            }
        }
        datasets.create_dataset(ctx, project, "TRAIN", source)
        arn = versions.create_project_version(ctx, project, "v1", {})["ProjectVersionArn"]
        with pytest.raises(ResourceNotReadyError, match=r"TRAINING_IN_PROGRESS|no trained model"):
            resolve_model(arn, home)
    finally:
        ctx.close()
