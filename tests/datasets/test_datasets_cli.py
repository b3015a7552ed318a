"""`customlabels dataset split|stats|convert` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from customlabels.cli.main import app
from customlabels.formats import load

runner = CliRunner()


def test_split_writes_verbatim_lines(bees_manifest: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["dataset", "split", str(bees_manifest), "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    train = (tmp_path / "train.manifest").read_text().splitlines()
    test = (tmp_path / "test.manifest").read_text().splitlines()
    assert len(train) == summary["train_images"] and len(test) == summary["test_images"]
    assert sorted(train + test) == sorted(bees_manifest.read_text().splitlines())
    assert "--bucket-map bee-detection-demo=" in result.stderr
    loaded = load(
        "groundtruth",
        tmp_path / "test.manifest",
        bucket_map={"bee-detection-demo": bees_manifest.parent},
    )
    assert len(loaded) == len(test)


def test_split_default_output_is_beside_the_manifest(tmp_path: Path) -> None:
    from customlabels.datasets.synthetic import generate_sample

    manifest = generate_sample(tmp_path, n_images=20, seed=0)
    result = runner.invoke(app, ["dataset", "split", str(manifest), "--test-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    test = load("groundtruth", tmp_path / "output.test.manifest")
    assert len(test) == 5 and all(im.path is not None for im in test)


def test_stats(bees_manifest: Path) -> None:
    result = runner.invoke(app, ["dataset", "stats", str(bees_manifest), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert (
        stats["images"] == 555 and stats["boxes"] == 3216 and stats["images_without_labels"] == 70
    )
    assert 0.02 < stats["box_rel_side"]["p50"] < 0.04  # bees: median box side ≈ 3% of the image
    human = runner.invoke(app, ["dataset", "stats", str(bees_manifest)])
    assert "box side / image side" in human.stdout


def test_convert_voc_to_coco_and_errors(datasets_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bccd.json"
    result = runner.invoke(
        app,
        [
            "dataset",
            "convert",
            str(datasets_dir / "bccd" / "voc"),
            str(out),
            "--from",
            "voc",
            "--to",
            "coco",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ERROR_INVALID_BOUNDING_BOX ×2" in result.stdout
    assert load("coco", out, images_dir=datasets_dir / "bccd" / "images").num_boxes == 3941
    bad = runner.invoke(
        app, ["dataset", "convert", str(out), str(tmp_path / "x"), "--from", "coco", "--to", "nope"]
    )
    assert bad.exit_code != 0 and "unknown dataset format 'nope'" in str(bad.exception)


def test_stats_and_validate_give_per_label_advice(bee_crops_manifest: Path) -> None:
    """Before training, the person learns that drones come from one scene, in words."""
    for command in ("stats", "validate"):
        result = runner.invoke(app, ["dataset", command, str(bee_crops_manifest)])
        assert result.exit_code == 0, result.output
        assert "groups" in result.stdout and "val img" in result.stdout
        assert "advice: drone: all 13 training images come from 1 scene" in result.stdout
    data = json.loads(
        runner.invoke(app, ["dataset", "stats", str(bee_crops_manifest), "--json"]).stdout
    )
    drone = next(e for e in data["advice"]["labels"] if e["label"] == "drone")
    assert drone["train_groups"] == 1 and drone["validation_instances"] == 0


def test_an_option_the_format_does_not_take_is_refused_by_its_flag(
    datasets_dir: Path, tmp_path: Path
) -> None:
    voc = str(datasets_dir / "bccd" / "voc")
    endpoint = ["--s3-endpoint-url", "http://127.0.0.1:1"]
    stats = runner.invoke(app, ["dataset", "stats", voc, "--from", "voc", *endpoint])
    assert stats.exit_code != 0
    assert str(stats.exception) == (
        "--from voc does not take --s3-endpoint-url; it takes --images-dir"
    )
    out = str(tmp_path / "out")
    convert = ["dataset", "convert", voc, out, "--from", "voc", "--to", "yolo"]
    prefix = runner.invoke(app, [*convert, "--ref-prefix", "s3://b/"])
    assert "--to yolo does not take --ref-prefix" in str(prefix.exception)
    assert not (tmp_path / "out").exists()  # refused before anything was read or written
