"""COCO JSON: exact round trip of the real sets, and the codes for malformed input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from customlabels.errors import InvalidParameterError, ManifestError
from customlabels.formats import ValidationReport, load, save
from customlabels.formats.coco import coco_to_dataset


def test_bees_round_trip_through_coco(bees_manifest: Path, tmp_path: Path) -> None:
    gt = load("groundtruth", bees_manifest)
    save("coco", gt, tmp_path / "bees.json")
    coco = load("coco", tmp_path / "bees.json")
    assert len(coco) == 555 and coco.num_boxes == 3216
    assert coco.labels == gt.labels
    for a, b in zip(gt, coco, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.box_labels, b.box_labels)
        assert a.size_wh == b.size_wh
    # and back to a manifest beside the images: same refs' keys, same boxes
    save(
        "groundtruth", coco, bees_manifest.parent.parent / "x" if False else tmp_path / "o.manifest"
    )
    again = load("groundtruth", tmp_path / "o.manifest", check_files=False)
    assert again.num_boxes == 3216
    assert all(im.ref.startswith("images/") for im in again)


def _coco(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "categories": [{"id": 3, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 10, 20]}],
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("annotation", "code"),
    [
        ({"image_id": 1, "category_id": 9, "bbox": [1, 2, 3, 4]}, "ERROR_MISSING_CLASS_MAP_ID"),
        ({"image_id": 1, "category_id": 3, "bbox": [1, 2, 3]}, "ERROR_INVALID_BOUNDING_BOX"),
        ({"image_id": 1, "category_id": 3, "bbox": [-1, 2, 3, 4]}, "ERROR_INVALID_BOUNDING_BOX"),
        ({"image_id": 1, "category_id": 3, "bbox": [95, 2, 30, 4]}, "ERROR_INVALID_BOUNDING_BOX"),
        (
            {"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 1},
            "WARNING_CROWD_ANNOTATION_SKIPPED",
        ),
    ],
)
def test_malformed_annotations(annotation: dict[str, Any], code: str) -> None:
    report = ValidationReport()
    data = _coco()
    data["annotations"].append({"id": 2, **annotation})
    ds = coco_to_dataset(data, report)
    assert code in report.codes()
    assert len(ds.images[0].boxes) == 1  # the good box stays
    np.testing.assert_array_equal(ds.images[0].boxes, [[1, 2, 11, 22]])


@pytest.mark.parametrize("data", [[], {"images": 3, "categories": []}, {"categories": []}])
def test_not_coco(data: Any) -> None:
    with pytest.raises(ManifestError, match="expected"):
        coco_to_dataset(data)


def test_file_name_escaping_is_refused(tmp_path: Path) -> None:
    data = _coco(images=[{"id": 1, "file_name": "../../etc/passwd", "width": 100, "height": 80}])
    (tmp_path / "c.json").write_text(json.dumps(data))
    report = ValidationReport()
    ds = load("coco", tmp_path / "c.json", report=report)
    assert len(ds) == 0 and report.codes() == {"ERROR_INVALID_SOURCE_REF_FORMAT": 1}


def test_classification_cannot_be_written(bee_crops_manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="COCO holds boxes"):
        save("coco", load("groundtruth", bee_crops_manifest), tmp_path / "c.json")
