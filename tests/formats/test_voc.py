"""Pascal VOC: BCCD's XML gives the same boxes as its manifest; malformed XML is reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from customlabels.core.dataset import Dataset, LabelMap
from customlabels.formats import ValidationReport, load, save
from customlabels.formats.voc import voc_to_record


def _by_name(ds: Dataset) -> dict[str, tuple[np.ndarray, list[str]]]:
    return {im.name: (im.boxes, [ds.labels.name_of(int(i)) for i in im.box_labels]) for im in ds}


def test_bccd_voc_equals_manifest(datasets_dir: Path, bccd_manifest: Path) -> None:
    report = ValidationReport()
    voc = load("voc", datasets_dir / "bccd" / "voc", report=report)
    gt = load("groundtruth", bccd_manifest)
    assert len(voc) == 292 and voc.num_boxes == gt.num_boxes == 3941
    a, b = _by_name(gt), _by_name(voc)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0], err_msg=name)
        assert a[name][1] == b[name][1], name
    assert report.codes() == {"ERROR_INVALID_BOUNDING_BOX": 2}
    bad = {voc.images[e.line - 1].name for e in report.errors if e.line is not None}
    assert bad == {"BloodImage_00338.jpg", "BloodImage_00343.jpg"}
    assert all(im.path is not None and im.path.is_file() for im in voc)  # ../images found


XML = """<annotation><filename>{name}</filename><size><width>100</width><height>80</height>
<depth>3</depth></size>{objects}</annotation>"""
OBJ = (
    "<object><name>{label}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
    "<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
)


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        ("<annotation><filename>a.jpg", "ERROR_INVALID_JSON_LINE"),
        (XML.format(name="", objects=""), "ERROR_MISSING_SOURCE_REF"),
        (
            XML.format(name="a.jpg", objects=OBJ.format(label="x", x1=-4, y1=1, x2=9, y2=9)),
            "ERROR_INVALID_BOUNDING_BOX",
        ),
        (
            XML.format(name="a.jpg", objects=OBJ.format(label="x", x1=4, y1=1, x2=200, y2=9)),
            "ERROR_INVALID_BOUNDING_BOX",
        ),
        (
            XML.format(name="a.jpg", objects=OBJ.format(label="x", x1="a", y1=1, x2=2, y2=9)),
            "ERROR_INVALID_BOUNDING_BOX",
        ),
        (
            XML.format(name="a.jpg", objects=OBJ.format(label="", x1=1, y1=1, x2=2, y2=9)),
            "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x"><!ENTITY f "&e;&e;">]>'
            "<annotation><filename>&f;</filename></annotation>",
            "ERROR_INVALID_JSON_LINE",
        ),
    ],
)
def test_malformed_voc(xml: str, code: str) -> None:
    report = ValidationReport()
    voc_to_record(xml, LabelMap(), report, 1)
    assert code in report.codes(), report.issues


def test_voc_round_trip(bccd_manifest: Path, datasets_dir: Path, tmp_path: Path) -> None:
    gt = load("groundtruth", bccd_manifest)
    save("voc", gt, tmp_path / "voc")
    back = load("voc", tmp_path / "voc", images_dir=datasets_dir / "bccd" / "images")
    a, b = _by_name(gt), _by_name(back)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k][0], b[k][0]) and a[k][1] == b[k][1] for k in a)
