"""Folder labels (bee-crops: identical to its manifest) and YOLO (bees: to the pixel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from customlabels.core.dataset import Split
from customlabels.errors import InvalidParameterError
from customlabels.formats import ValidationReport, load, save
from customlabels.formats.yolo import parse_yolo_labels


def _path_labels(ds) -> dict[Path, list[str]]:  # type: ignore[no-untyped-def]
    return {im.path: sorted(ds.labels.name_of(i) for i in im.image_labels) for im in ds}


def test_bee_crops_folders_equal_manifest(datasets_dir: Path, bee_crops_manifest: Path) -> None:
    folders = load("folders", datasets_dir / "bee-crops" / "images")
    manifest = load("groundtruth", bee_crops_manifest)
    assert len(folders) == len(manifest) == 1063
    assert sorted(folders.labels.names) == sorted(manifest.labels.names)
    assert _path_labels(folders) == _path_labels(manifest)


def test_folders_skip_non_images_and_round_trip(bee_crops_manifest: Path, tmp_path: Path) -> None:
    ds = load("groundtruth", bee_crops_manifest)
    save("folders", ds.subset(ds.images[:40]), tmp_path / "f")
    (tmp_path / "f" / "bee" / "notes.txt").write_text("not an image")
    report = ValidationReport()
    back = load("folders", tmp_path / "f", report=report)
    assert len(back) == 40
    assert report.codes() == {"ERROR_INVALID_IMAGE": 1}
    with pytest.raises(InvalidParameterError, match="image-level labels"):
        save(
            "folders",
            load("groundtruth", bee_crops_manifest.parent.parent / "bccd" / "output.manifest"),
            tmp_path / "g",
        )


def test_bees_round_trip_through_yolo(bees_manifest: Path, tmp_path: Path) -> None:
    gt = load("groundtruth", bees_manifest)
    save("yolo", gt, tmp_path / "yolo")
    report = ValidationReport()
    back = load("yolo", tmp_path / "yolo" / "data.yaml", report=report)
    assert not report.issues
    assert len(back) == 555 and back.num_boxes == 3216
    assert back.labels == gt.labels
    by_name = {im.name: im for im in back}
    for im in gt:
        other = by_name[im.name]
        assert other.split == Split.TRAIN
        np.testing.assert_allclose(other.boxes, im.boxes, atol=1e-5)
        np.testing.assert_array_equal(other.box_labels, im.box_labels)


@pytest.mark.parametrize(
    ("text", "code", "kept"),
    [
        ("0 0.5 0.5 0.2 0.2\n", None, 1),
        ("5 0.5 0.5 0.2 0.2\n", "ERROR_MISSING_CLASS_MAP_ID", 0),
        ("0 0.5 0.5 0.2\n", "ERROR_INVALID_BOUNDING_BOX", 0),
        ("0 x 0.5 0.2 0.2\n", "ERROR_INVALID_BOUNDING_BOX", 0),
        ("0 0.95 0.5 0.2 0.2\n", "ERROR_INVALID_BOUNDING_BOX", 0),
        ("0 0.1 0.1 0.3 0.1 0.3 0.4\n", None, 1),  # polygon, boxed
        ("\n\n", None, 0),
    ],
)
def test_yolo_label_rows(text: str, code: str | None, kept: int) -> None:
    report = ValidationReport()
    boxes, ids = parse_yolo_labels(text, (100, 50), 2, report, 1, "labels/x.txt")
    assert len(boxes) == len(ids) == kept
    assert (code in report.codes()) if code else not report.issues
    if text.startswith("0 0.1 0.1 0.3"):
        np.testing.assert_allclose(boxes[0], [10, 5, 30, 20])


def test_yolo_path_leaving_root_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "images" / "val").mkdir(parents=True)
    Image.new("RGB", (80, 64)).save(tmp_path / "images" / "val" / "a.png")
    (tmp_path / "data.yaml").write_text(
        "path: ../../etc\nval: images/val\ntrain: ../outside\nnames: [a]\n"
    )
    report = ValidationReport()
    ds = load("yolo", tmp_path, report=report)
    assert [im.ref for im in ds] == ["images/val/a.png"]  # no label file: a negative image
    assert ds.images[0].split == Split.VALIDATION and len(ds.images[0].boxes) == 0
    assert report.codes() == {"WARNING_PATH_IGNORED": 2}
