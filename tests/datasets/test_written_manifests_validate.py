"""Every manifest the project writes passes its own ``customlabels dataset validate``.

``split`` copies lines verbatim, ``convert --to groundtruth`` writes new ones; both are read back
by the CLI with the service's rules (the evaluation manifest is checked in
``tests/evaluation/test_run.py``, beside the model that writes it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from customlabels.cli.main import app

runner = CliRunner()


def _validate(manifest: Path, *bucket_map: str) -> dict[str, Any]:
    args = ["dataset", "validate", str(manifest), "--json"]
    for item in bucket_map:
        args += ["--bucket-map", item]
    result = runner.invoke(app, args)
    summary: dict[str, Any] = json.loads(result.stdout)
    assert result.exit_code == (0 if summary["usable"] else 1)
    return summary


def test_split_manifests_validate(bees_manifest: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["dataset", "split", str(bees_manifest), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    source = _validate(bees_manifest)
    for side in ("train", "test"):
        summary = _validate(
            tmp_path / f"{side}.manifest", f"bee-detection-demo={bees_manifest.parent}"
        )
        stats = summary["statistics"]
        assert summary["usable"] and summary["errors"] == []
        assert stats["invalid_json_lines"] == 0 and stats["valid_json_lines"] > 0
        assert [i for i in summary["issues"] if i["severity"] == "error"] == []
        assert set(summary["labels"]) == set(source["labels"])


@pytest.mark.parametrize("via", ["voc", "coco"])
def test_converted_ground_truth_validates(datasets_dir: Path, tmp_path: Path, via: str) -> None:
    bccd = datasets_dir / "bccd"
    source, fmt, images = bccd / "voc", "voc", bccd / "images"
    if via == "coco":  # the manifest → COCO (file_name: the refs' keys, images/...) → a manifest
        source, fmt, images = tmp_path / "bccd.json", "coco", bccd
        first = runner.invoke(
            app, ["dataset", "convert", str(bccd / "output.manifest"), str(source), "--to", "coco"]
        )
        assert first.exit_code == 0, first.output
    out = tmp_path / "converted.manifest"
    result = runner.invoke(
        app,
        [
            "dataset",
            "convert",
            str(source),
            str(out),
            "--from",
            fmt,
            "--to",
            "groundtruth",
            "--images-dir",
            str(images),
            "--ref-prefix",
            "s3://converted/",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = _validate(out, f"converted={images}")
    assert summary["usable"] and summary["issues"] == [] and summary["errors"] == []
    assert summary["statistics"]["valid_json_lines"] == 292
    # every box but the two zero-area ones dropped on reading (as in test_convert_voc_to_coco)
    assert sum(c["boxes"] for c in summary["labels"].values()) == 3941
