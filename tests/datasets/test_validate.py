"""validate_manifest and `customlabels dataset validate`: codes, lines, exit status."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customlabels.cli.main import app
from customlabels.datasets.image_checks import check_image_file
from customlabels.datasets.validate import ValidationConfig, validate_dataset, validate_manifest

EXPECTED = [
    # (line, code, words in the message)
    (2, "ERROR_INVALID_JSON_LINE", "not valid JSON"),
    (3, "ERROR_MISSING_SOURCE_REF", "source-ref"),
    (4, "ERROR_MISSING_CLASS_MAP_ID", "class_id 7"),
    (5, "ERROR_INVALID_BOUNDING_BOX", "negative left"),
    (6, "ERROR_INVALID_BOUNDING_BOX", "outside the 96×80 image"),
    (7, "ERROR_INVALID_IMAGE", "not a JPEG or PNG"),
    (8, "ERROR_INVALID_IMAGE", "truncated JPEG"),
    (9, "ERROR_INVALID_IMAGE_DIMENSION", "400000000 pixels"),
    (10, "ERROR_INVALID_SOURCE_REF_FORMAT", "'..' refused"),
    (11, "ERROR_INVALID_IMAGE_DIMENSION", "32×32"),
    (12, "WARNING_IMAGE_SIZE_MISMATCH", "80×96"),
]


@pytest.mark.parametrize(("line", "code", "words"), EXPECTED)
def test_each_malformed_line_has_its_code(
    malformed_dir: Path, line: int, code: str, words: str
) -> None:
    report = validate_manifest(malformed_dir / "output.manifest")
    matching = [i for i in report.issues if i.line == line and i.code == code]
    assert matching, [str(i) for i in report.issues if i.line == line]
    assert any(words in i.message for i in matching), [i.message for i in matching]


def test_malformed_manifest_summary(malformed_dir: Path) -> None:
    report = validate_manifest(malformed_dir / "output.manifest")
    stats = report.summary()["statistics"]
    assert stats["total_json_lines"] == 13
    assert stats["error_json_line_indices"] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert stats["valid_json_lines"] == 3
    assert not report.usable
    assert [e["code"] for e in report.summary()["errors"]] == [
        "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST"
    ]
    assert "77%" in report.summary()["errors"][0]["message"]
    # the secret outside the folder was never read: it appears in no message
    assert not any("secret.jpg" in i.message and "refused" not in i.message for i in report.issues)


def test_a_few_bad_lines_leave_the_dataset_usable(malformed_dir: Path) -> None:
    manifest = malformed_dir / "output.manifest"
    lines = manifest.read_text().splitlines()
    many = []
    for i in range(10):  # ten good lines on copies of good.jpg
        shutil.copy(malformed_dir / "images" / "good.jpg", malformed_dir / "images" / f"g{i}.jpg")
        many.append(lines[0].replace("images/good.jpg", f"images/g{i}.jpg"))
    manifest.write_text("\n".join([*many, lines[12], lines[7], lines[1]]) + "\n")  # 2 bad of 13
    dataset, report = validate_dataset(manifest)
    assert report.usable, report.manifest_errors
    assert report.invalid_lines == {12, 13} and len(dataset) == 11
    assert report.labels == {
        "square": {"images": 11, "boxes": 11},
        "circle": {"images": 10, "boxes": 10},
    }


def test_huge_png_is_refused_before_decoding(malformed_dir: Path) -> None:
    result = check_image_file(malformed_dir / "images" / "huge.png")
    assert result.code == "ERROR_INVALID_IMAGE_DIMENSION"


def test_deep_mode_decodes(malformed_dir: Path) -> None:
    report = validate_manifest(
        malformed_dir / "output.manifest", config=ValidationConfig(deep=True)
    )
    assert 1 not in report.invalid_lines and 13 not in report.invalid_lines


def test_missing_manifest_is_reported_not_raised(tmp_path: Path) -> None:
    report = validate_manifest(tmp_path / "none.manifest")
    assert not report.usable
    assert (
        report.summary()["errors"][0]["code"] == "ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT"
    )


def test_classification_needs_two_labels(tmp_path: Path, bee_crops_manifest: Path) -> None:
    lines = [x for x in bee_crops_manifest.read_text().splitlines() if "/bee/" in x][:5]
    manifest = tmp_path / "one-label.manifest"
    manifest.write_text("\n".join(lines) + "\n")
    crops = bee_crops_manifest.parent
    report = validate_manifest(manifest, bucket_map={"bee-classification-demo": crops})
    assert [e.code for e in report.manifest_errors] == ["ERROR_INSUFFICIENT_LABELS"]


def test_test_manifest_cross_checks(bccd_manifest: Path, bees_manifest: Path) -> None:
    same = validate_manifest(bccd_manifest, test_path=bccd_manifest)
    assert [e.code for e in same.manifest_errors] == ["ERROR_TRAINING_TESTING_IMAGES_OVERLAP"]
    other = validate_manifest(bccd_manifest, test_path=bees_manifest)
    assert "ERROR_INSUFFICIENT_LABEL_OVERLAP" in {e.code for e in other.manifest_errors}
    assert other.test is not None and other.test.usable


# -- the real sets -----------------------------------------------------------------------
def test_bees_validates(bees_manifest: Path) -> None:
    report = validate_manifest(bees_manifest)
    assert report.usable
    summary = report.summary()
    assert summary["statistics"]["total_json_lines"] == 555
    assert summary["statistics"]["invalid_json_lines"] == 0
    assert summary["statistics"]["ignored_json_lines"] == 70
    assert summary["labels"] == {
        "bee": {"images": 412, "boxes": 2833},
        "pollenbee": {"images": 187, "boxes": 340},
        "drone": {"images": 14, "boxes": 22},
        "queen": {"images": 21, "boxes": 21},
    }


def test_bccd_validates_with_two_invalid_boxes(bccd_manifest: Path) -> None:
    report = validate_manifest(bccd_manifest)
    assert report.usable
    assert report.codes() == {"ERROR_INVALID_BOUNDING_BOX": 2}
    assert sum(c["boxes"] for c in report.labels.values()) == 3941


# -- through the CLI ---------------------------------------------------------------------
runner = CliRunner()


def test_cli_json_on_malformed_input(malformed_dir: Path) -> None:
    result = runner.invoke(
        app, ["dataset", "validate", str(malformed_dir / "output.manifest"), "--json"]
    )
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a traceback
    summary = json.loads(result.stdout)
    codes = {i["code"] for i in summary["issues"]}
    assert {code for _, code, _ in EXPECTED} <= codes
    assert all({"code", "message", "line", "severity"} <= set(i) for i in summary["issues"])


def test_cli_human_output(malformed_dir: Path) -> None:
    result = runner.invoke(app, ["dataset", "validate", str(malformed_dir / "output.manifest")])
    assert result.exit_code == 1
    assert "ERROR_INVALID_SOURCE_REF_FORMAT" in result.stdout
    assert "line 10 [source-ref]" in result.stdout
    assert "NOT usable" in result.stdout
    assert "Traceback" not in result.output


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customlabels.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_bad_bucket_map_is_one_line_error(bees_manifest: Path) -> None:
    proc = _cli("dataset", "validate", str(bees_manifest), "--bucket-map", "nonsense")
    assert proc.returncode == 2
    assert "expected BUCKET=DIR" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_bees_json_subprocess(bees_manifest: Path) -> None:
    proc = _cli("dataset", "validate", str(bees_manifest), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["statistics"]["use_case"] == "OBJECT_LOCALIZATION"
    assert summary["statistics"]["valid_json_lines"] == 555


def test_cli_exit_status_through_the_console_entry_point(malformed_dir: Path) -> None:
    proc = _cli("dataset", "validate", str(malformed_dir / "output.manifest"))
    assert proc.returncode == 1, proc.stderr  # not usable
    assert "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST" in proc.stderr
    usage = _cli("dataset", "validate")
    assert usage.returncode == 2
    assert "Missing argument" in usage.stderr and "Traceback" not in usage.stderr


def test_annotated_lines(malformed_dir: Path) -> None:
    from customlabels.datasets.validate import annotated_lines

    manifest = malformed_dir / "output.manifest"
    report = validate_manifest(manifest)
    original = manifest.read_text().splitlines()
    lines = annotated_lines(manifest, report)
    assert len(lines) == len(original) and lines[0] == original[0]
    broken = json.loads(lines[1])
    assert broken["line"] == original[1]
    assert [e["code"] for e in broken["errors"]] == ["ERROR_INVALID_JSON_LINE"]
    unknown_class = json.loads(lines[3])
    assert unknown_class["source-ref"].endswith("good2.jpg")
    assert {e["code"] for e in unknown_class["errors"]} == {
        "ERROR_MISSING_CLASS_MAP_ID",
        "ERROR_NO_VALID_ANNOTATIONS",
    }


def test_other_formats_get_the_same_rules(datasets_dir: Path) -> None:
    voc = validate_manifest(datasets_dir / "bccd" / "voc", fmt="voc")
    assert voc.usable and voc.codes() == {"ERROR_INVALID_BOUNDING_BOX": 2}
    folders = validate_manifest(datasets_dir / "bee-crops" / "images", fmt="folders")
    assert folders.usable and folders.total_lines == 1063
    assert folders.labels["queen"] == {"images": 21, "boxes": 0}
    result = runner.invoke(
        app, ["dataset", "validate", str(datasets_dir / "bccd" / "voc"), "--from", "voc", "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["labels"]["WBC"]["boxes"] == 301
