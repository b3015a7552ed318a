"""``customlabels evaluate``, ``compare`` and ``visualize`` on real tiny models."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from customlabels.cli.main import app
from customlabels.core.model_card import ModelCard

runner = CliRunner()


def _bucket_args(buckets: dict[str, Path]) -> list[str]:
    return [x for name, folder in buckets.items() for x in ("--bucket-map", f"{name}={folder}")]


def test_evaluate_prints_a_table_or_the_summary(
    tmp_path: Path, tiny_detector_dir: Path, detector_test_set: tuple[Path, dict[str, Path]]
) -> None:
    manifest, buckets = detector_test_set
    args = [
        "evaluate",
        str(tiny_detector_dir),
        str(manifest),
        "--out",
        str(tmp_path / "a"),
        "--bootstrap",
        "100",
        "--no-update-card",
        "--max-images",
        "2",
        *_bucket_args(buckets),
    ]
    card_before = (tiny_detector_dir / "model.json").read_bytes()
    human = runner.invoke(app, args)
    assert human.exit_code == 0, human.output
    assert "assumed threshold" in human.output and "mAP@0.5" in human.output
    for label in ModelCard.load(tiny_detector_dir).labels:
        assert label in human.output
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.output)
    assert summary["EvaluationDetails"]["NumberOfTestingImages"] == 8
    assert summary == json.loads((tmp_path / "a" / "EvaluationSummary.json").read_text()) | {
        "EvaluationDetails": summary["EvaluationDetails"]  # timestamps differ
    }
    assert (tiny_detector_dir / "model.json").read_bytes() == card_before  # --no-update-card


def test_evaluate_refuses_a_folder_that_is_not_a_model(tmp_path: Path, bees_manifest: Path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "customlabels.cli.main",
            "evaluate",
            str(tmp_path),
            str(bees_manifest),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "not a model folder" in proc.stderr and "Traceback" not in proc.stderr


def test_compare_two_versions(
    tmp_path: Path, tiny_detector_dir: Path, detector_test_set: tuple[Path, dict[str, Path]]
) -> None:
    """Version B: the same network with its thresholds raised to 0.9 (a different operating
    point), so the paired bootstrap has a real difference to judge."""
    manifest, buckets = detector_test_set
    b = tmp_path / "bees-strict"
    shutil.copytree(tiny_detector_dir, b)
    card = ModelCard.load(b)
    card.thresholds = dict.fromkeys(card.labels, 0.9)
    card.version_name = "bees-strict"
    card.save(b)
    out = tmp_path / "cmp"
    result = runner.invoke(
        app,
        [
            "compare",
            str(tiny_detector_dir),
            str(b),
            str(manifest),
            "--out",
            str(out),
            "--bootstrap",
            "200",
            "--json",
            *_bucket_args(buckets),
        ],
    )
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)
    a_model, b_model = s["Models"]
    assert (a_model["Name"], b_model["Name"]) == (
        ModelCard.load(tiny_detector_dir).version_name,
        "bees-strict",
    )
    for m in (a_model, b_model):
        assert m["MedianInferenceMs"] > 0 and m["ModelSizeBytes"] > 0
        assert m["TrainingSeconds"] is not None
    assert a_model["mAP50"] == b_model["mAP50"]  # same network: thresholds do not change AP
    diff = s["F1Difference"]["Overall"]
    assert diff["f1_difference"] == pytest.approx(b_model["F1Score"] - a_model["F1Score"], abs=1e-6)
    lo, hi = diff["interval"]
    assert lo <= diff["f1_difference"] <= hi
    assert diff["significant"] == (lo > 0 or hi < 0)
    for name in ("compare.json", "compare.html", "compare_pr_curves.png"):
        assert (out / name).stat().st_size > 0
    html = (out / "compare.html").read_text()
    assert "bees-strict" in html and "http" not in html.split("<body>", 1)[1]


def test_compare_a_model_with_itself_is_not_significant(
    tmp_path: Path, tiny_detector_dir: Path, detector_test_set: tuple[Path, dict[str, Path]]
) -> None:
    manifest, buckets = detector_test_set
    result = runner.invoke(
        app,
        [
            "compare",
            str(tiny_detector_dir),
            str(tiny_detector_dir),
            str(manifest),
            "--out",
            str(tmp_path),
            "--bootstrap",
            "100",
            *_bucket_args(buckets),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "F1 difference B − A: 0.000 [0.00, 0.00] not significant" in result.output


def test_visualize_two_thresholds_side_by_side(
    tmp_path: Path, tiny_detector_dir: Path, datasets_dir: Path
) -> None:
    card = ModelCard.load(tiny_detector_dir)
    ref = card.dataset["images"]["train"][0]
    image = datasets_dir / "bees" / ref.split("/", 3)[3]
    result = runner.invoke(
        app,
        [
            "visualize",
            str(tiny_detector_dir),
            str(image),
            "--min-confidence",
            "99.4,0",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    out = Path(result.output.strip().splitlines()[-1])
    assert out.parent == tmp_path and out.suffix == ".png"
    with Image.open(image) as src, Image.open(out) as png:
        k = min(1.0, 1280 / max(src.size))
        assert png.width == 2 * round(src.width * k) + 8  # two panels and the gap
        assert png.height > round(src.height * k)  # the image under a title band
        half = round(src.width * k)
        left = png.crop((0, 60, half, png.height)).tobytes()
        right = png.crop((half + 8, 60, png.width, png.height)).tobytes()
        # every kept box at 0 (the tiny model, calibrated on 3 images, never reaches 99.4)
        assert left != right
    single = runner.invoke(
        app, ["visualize", str(tiny_detector_dir), str(image), "--out", str(tmp_path / "one")]
    )
    assert single.exit_code == 0, single.output


@pytest.mark.parametrize("bad", ["abc", "101", "50,-1"])
def test_visualize_rejects_bad_confidence(tmp_path: Path, tiny_detector_dir: Path, bad: str):
    result = runner.invoke(
        app, ["visualize", str(tiny_detector_dir), "x.jpg", "--min-confidence", bad]
    )
    assert result.exit_code != 0
    assert "--min-confidence" in str(result.exception)


NO_TORCH = r"""
import sys


class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"{name} is not installed (base install)")
        return None


sys.meta_path.insert(0, NoTorch())
from customlabels.cli.main import main

sys.argv = ["customlabels", *sys.argv[1:]]
main()
"""


def test_evaluate_and_compare_never_import_torch(
    tmp_path: Path, tiny_detector_dir: Path, detector_test_set: tuple[Path, dict[str, Path]]
) -> None:
    manifest, buckets = detector_test_set
    common = ["--bootstrap", "20", *_bucket_args(buckets), "--json"]
    for args in (
        ["evaluate", str(tiny_detector_dir), str(manifest), "--out", str(tmp_path / "e"),
         "--no-update-card", "--max-images", "1", *common],
        ["compare", str(tiny_detector_dir), str(tiny_detector_dir), str(manifest), "--out",
         str(tmp_path / "c"), *common],
    ):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout)
