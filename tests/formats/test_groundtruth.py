"""Ground Truth manifests: the real sets, every malformed-line code, multi-label, refs, writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from customlabels.core.dataset import Task
from customlabels.formats import ValidationReport, load, save
from customlabels.formats.groundtruth import (
    dataset_to_ground_truth,
    load_ground_truth,
    parse_ground_truth,
    read_ground_truth,
)


def det_line(
    ref: str = "s3://bucket/images/a.jpg",
    annotations: list[dict[str, Any]] | None = None,
    size: tuple[int, int] = (200, 100),
    class_map: dict[str, str] | None = None,
    attr: str = "boxes",
) -> dict[str, Any]:
    anns = (
        [{"class_id": 0, "left": 10, "top": 20, "width": 30, "height": 40}]
        if annotations is None
        else annotations
    )
    return {
        "source-ref": ref,
        attr: {
            "image_size": [{"width": size[0], "height": size[1], "depth": 3}],
            "annotations": anns,
        },
        f"{attr}-metadata": {
            "objects": [{"confidence": 1} for _ in anns],
            "class-map": class_map or {"0": "cat", "1": "dog"},
            "type": "groundtruth/object-detection",
        },
    }


def cls_attr(line: dict[str, Any], attr: str, name: str) -> dict[str, Any]:
    line[attr] = 0
    line[f"{attr}-metadata"] = {
        "confidence": 1,
        "class-name": name,
        "type": "groundtruth/image-classification",
    }
    return line


def parse(*lines: dict[str, Any] | str) -> tuple[Any, ValidationReport]:
    report = ValidationReport()
    texts = [x if isinstance(x, str) else json.dumps(x) for x in lines]
    return parse_ground_truth(texts, report), report


# -- the real sets -----------------------------------------------------------------------
def test_bees(bees_manifest: Path) -> None:
    ds, report = read_ground_truth(bees_manifest)
    assert len(ds) == 555
    assert sum(1 for im in ds if len(im.boxes) == 0) == 70
    assert ds.num_boxes == 3216
    assert ds.labels.names == ["bee", "pollenbee", "drone", "queen"]
    counts = np.bincount(np.concatenate([im.box_labels for im in ds]), minlength=4)
    assert counts.tolist() == [2833, 340, 22, 21]
    assert ds.task == Task.OBJECT_LOCALIZATION
    assert all(im.path is not None and im.path.is_file() for im in ds)
    assert report.usable and not report.invalid_lines
    assert report.codes() == {"WARNING_NO_ANNOTATIONS": 70, "ERROR_TOO_MANY_BOUNDING_BOXES": 5}
    assert all(i.severity == "warning" for i in report.issues)


def test_bccd_reports_exactly_the_two_zero_area_boxes(bccd_manifest: Path) -> None:
    ds, report = read_ground_truth(bccd_manifest)
    assert len(ds) == 292
    assert ds.num_boxes == 3943 - 2
    errors = report.errors
    assert [e.code for e in errors] == ["ERROR_INVALID_BOUNDING_BOX"] * 2
    lines = {e.line for e in errors}
    refs = {im.ref.rsplit("/", 1)[-1] for im in ds if im.line in lines}
    assert refs == {"BloodImage_00338.jpg", "BloodImage_00343.jpg"}
    assert all("zero area" in e.message for e in errors)
    assert report.usable and not report.invalid_lines


def test_bee_crops_manifest(bee_crops_manifest: Path) -> None:
    ds = load("groundtruth", bee_crops_manifest)
    assert len(ds) == 1063
    assert ds.task == Task.IMAGE_LEVEL_LABELS
    assert sorted(ds.labels.names) == ["bee", "drone", "pollenbee", "queen"]
    counts = {n: sum(1 for im in ds if ds.labels.id_of(n) in im.image_labels) for n in ds.labels}
    assert counts == {"bee": 680, "pollenbee": 340, "drone": 22, "queen": 21}


# -- line parsing ------------------------------------------------------------------------
def test_boxes_are_xyxy_pixels() -> None:
    ds, report = parse(det_line())
    assert not report.issues
    np.testing.assert_array_equal(ds.images[0].boxes, [[10, 20, 40, 60]])
    assert ds.images[0].size_wh == (200, 100)
    assert ds.labels.names == ["cat"]  # "dog" labels nothing: left out


@pytest.mark.parametrize(
    ("meta", "codes"),
    [
        ({"type": "customlabels/predictions"}, []),  # predictions: read past, not labels
        ({}, ["ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT"]),  # no type: an error
        (None, ["ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT"]),  # no metadata at all
    ],
)
def test_prediction_attributes_are_not_labels(
    meta: dict[str, Any] | None, codes: list[str]
) -> None:
    line = det_line()
    line["customlabels-predictions"] = {"annotations": [{"class_id": 1, "left": 0, "top": 0}]}
    if meta is not None:
        line["customlabels-predictions-metadata"] = meta
    ds, report = parse(line)
    assert [i.code for i in report.issues] == codes
    assert ds.labels.names == ["cat"] and len(ds.images[0].boxes) == 1


def test_multilabel_and_mixed_lines() -> None:
    both = cls_attr(cls_attr(det_line(), "species", "tabby"), "mood", "calm")
    only_cls = cls_attr({"source-ref": "s3://bucket/images/b.jpg"}, "species", "siamese")
    ds, report = parse(both, only_cls)
    assert not report.issues
    assert ds.task == Task.OBJECT_LOCALIZATION
    first, second = ds.images
    assert [ds.labels.name_of(i) for i in first.image_labels] == ["tabby", "calm"]
    assert len(first.boxes) == 1
    assert [ds.labels.name_of(i) for i in second.image_labels] == ["siamese"]
    assert len(second.boxes) == 0


def test_class_ids_follow_each_lines_class_map() -> None:
    a = det_line(class_map={"0": "cat", "1": "dog"})
    b = det_line("s3://bucket/images/b.jpg", class_map={"0": "dog", "1": "cat"})
    ds, _ = parse(a, b)
    assert [ds.labels.name_of(int(i)) for i in ds.images[0].box_labels] == ["cat"]
    assert [ds.labels.name_of(int(i)) for i in ds.images[1].box_labels] == ["dog"]


BOX = {"class_id": 0, "left": 10, "top": 20, "width": 30, "height": 40}


@pytest.mark.parametrize(
    ("line", "code", "line_invalid"),
    [
        ("{not json", "ERROR_INVALID_JSON_LINE", True),
        ("", "ERROR_INVALID_JSON_LINE", True),
        ("[1, 2]", "ERROR_INVALID_JSON_LINE", True),
        ({"boxes": 1}, "ERROR_MISSING_SOURCE_REF", True),
        ({**det_line(), "source-ref": 7}, "ERROR_INVALID_SOURCE_REF_FORMAT", True),
        ({"source-ref": "s3://b/k.jpg", "note": "x"}, "ERROR_NO_LABEL_ATTRIBUTES", True),
        (det_line(annotations=[{**BOX, "class_id": 5}]), "ERROR_MISSING_CLASS_MAP_ID", True),
        (det_line(annotations=[{**BOX, "left": -3}]), "ERROR_INVALID_BOUNDING_BOX", True),
        (det_line(annotations=[{**BOX, "width": 500}]), "ERROR_INVALID_BOUNDING_BOX", True),
        (det_line(annotations=[{**BOX, "width": -5}]), "ERROR_INVALID_BOUNDING_BOX", True),
        (det_line(annotations=[{**BOX, "height": "x"}]), "ERROR_INVALID_BOUNDING_BOX", True),
        (det_line(annotations=[{**BOX, "width": 0}]), "ERROR_INVALID_BOUNDING_BOX", True),
        (
            det_line(annotations=[{**BOX, "width": 1}], size=(4000, 100)),
            "ERROR_BOUNDING_BOX_TOO_SMALL",
            True,
        ),
        (det_line(annotations=[BOX, {**BOX, "class_id": 9}]), "ERROR_MISSING_CLASS_MAP_ID", False),
        (det_line(annotations=[BOX, {**BOX, "top": 90}]), "ERROR_INVALID_BOUNDING_BOX", False),
        (det_line(class_map={"0": "x" * 300}), "ERROR_INVALID_LABEL_NAME_LENGTH", True),
        (det_line(annotations=[BOX] * 51), "ERROR_TOO_MANY_BOUNDING_BOXES", False),
        (det_line(annotations=[]), "WARNING_NO_ANNOTATIONS", False),
        (
            {**det_line(), "boxes-metadata": {"type": "groundtruth/semantic-segmentation"}},
            "ERROR_UNSUPPORTED_USE_CASE_TYPE",
            True,
        ),
        (
            {**det_line(), "boxes-metadata": {"type": "groundtruth/object-detection"}},
            "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
            True,
        ),
        (
            {**det_line(), "boxes": {"annotations": []}},
            "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
            True,
        ),
        (
            {"source-ref": "s3://b/k.jpg", "boxes": det_line()["boxes"]},
            "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
            True,
        ),
        (
            {**det_line(), "boxes-metadata": {**det_line()["boxes-metadata"], "objects": []}},
            "ERROR_MISSING_BOUNDING_BOX_CONFIDENCE",
            False,
        ),
        (
            cls_attr({"source-ref": "s3://b/k.jpg"}, "c", "x" * 257),
            "ERROR_INVALID_LABEL_NAME_LENGTH",
            True,
        ),
        (
            {**cls_attr({"source-ref": "s3://b/k.jpg"}, "c", "cat"), "c": "zero"},
            "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
            True,
        ),
    ],
)
def test_malformed_lines(line: dict[str, Any] | str, code: str, line_invalid: bool) -> None:
    good = det_line("s3://bucket/images/good.jpg")
    ds, report = parse(good, line)
    assert code in report.codes(), report.issues
    issue = next(i for i in report.issues if i.code == code)
    assert issue.line == 2 and issue.message
    assert (2 in report.invalid_lines) is line_invalid
    assert len(ds) == (1 if line_invalid else 2)
    assert report.total_lines == 2
    assert 1 not in report.invalid_lines


def test_a_line_with_only_a_source_ref_is_an_unlabelled_image_not_a_training_image() -> None:
    ds, report = parse(det_line("s3://bucket/images/good.jpg"), {"source-ref": "s3://b/k.jpg"})
    issue = next(i for i in report.issues if i.code == "WARNING_UNLABELED_IMAGE")
    assert issue.line == 2 and issue.severity == "warning"
    assert 2 not in report.invalid_lines and 2 in report.ignored_lines
    assert [r.ref for r in ds.images] == ["s3://bucket/images/good.jpg"]


def test_summary_shape() -> None:
    _, report = parse(det_line(), "{bad", det_line("s3://b/images/n.jpg", annotations=[]))
    summary = report.summary()
    assert summary["statistics"] == {
        "use_case": "OBJECT_LOCALIZATION",
        "total_json_lines": 3,
        "valid_json_lines": 2,
        "invalid_json_lines": 1,
        "ignored_json_lines": 1,
        "error_json_line_indices": [1],
    }
    assert summary["errors"] == []


def test_duplicate_refs_are_merged() -> None:
    ds, report = parse(det_line(), det_line(annotations=[{**BOX, "left": 50}]))
    assert len(ds) == 1 and len(ds.images[0].boxes) == 2
    assert "WARNING_DUPLICATE_SOURCE_REF" in report.codes()


# -- files and refs ----------------------------------------------------------------------
def _write(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), "utf-8"
    )
    return path


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8\xff")
    return tmp_path


def test_refs_resolve_under_the_manifest_folder_and_bucket_map(layout: Path) -> None:
    (layout / "sub").mkdir()
    (layout / "sub" / "images").symlink_to(layout / "images")  # a link out of the root
    manifest = _write(
        layout / "sub" / "out.manifest",
        [det_line("s3://any-bucket/images/a.jpg"), det_line("s3://other/b.jpg")],
    )
    report = ValidationReport()
    ds = load_ground_truth(manifest, bucket_map={"other": layout / "elsewhere"}, report=report)
    assert [im.path for im in ds] == [layout / "elsewhere" / "b.jpg"]
    assert report.codes() == {"ERROR_INVALID_SOURCE_REF_FORMAT": 1}
    assert "outside" in report.errors[0].message


def test_default_root_is_the_manifest_folder(layout: Path) -> None:
    manifest = _write(layout / "out.manifest", [det_line("s3://whatever/images/a.jpg")])
    ds = load_ground_truth(manifest)
    assert [im.path for im in ds] == [layout / "images" / "a.jpg"]


@pytest.mark.parametrize(
    "ref",
    [
        "s3://bucket/../secret.jpg",
        "s3://bucket/images/../../secret.jpg",
        "../secret.jpg",
        "/etc/passwd",
        "http://example.com/a.jpg",
        "s3://bucket",
        "s3://bucket/",
    ],
)
def test_escaping_or_malformed_refs_are_refused(layout: Path, ref: str) -> None:
    manifest = _write(layout / "images" / "out.manifest", [det_line(ref)])
    report = ValidationReport()
    ds = load_ground_truth(manifest, report=report)
    assert len(ds) == 0
    assert [i.code for i in report.issues] == ["ERROR_INVALID_SOURCE_REF_FORMAT"]
    assert report.issues[0].field == "source-ref"


def test_missing_image_file_is_reported(layout: Path) -> None:
    manifest = _write(
        layout / "m.manifest", [det_line("s3://b/images/a.jpg"), det_line("s3://b/images/zz.jpg")]
    )
    report = ValidationReport()
    ds = load_ground_truth(manifest, report=report)
    assert len(ds) == 1
    assert report.codes() == {"ERROR_INVALID_IMAGE": 1}
    assert "not found" in report.issues[0].message


def test_missing_manifest_raises_manifest_error(tmp_path: Path) -> None:
    from customlabels.errors import ManifestError

    with pytest.raises(ManifestError, match="cannot read"):
        load_ground_truth(tmp_path / "nope.manifest")


# -- writing -----------------------------------------------------------------------------
def test_round_trip_bccd_is_exact(bccd_manifest: Path, tmp_path: Path) -> None:
    ds = load_ground_truth(bccd_manifest)
    save("groundtruth", ds, tmp_path / "rt.manifest")
    back = load_ground_truth(tmp_path / "rt.manifest", check_files=False)
    assert back.labels == ds.labels
    assert [im.ref for im in back] == [im.ref for im in ds]
    for a, b in zip(ds, back, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.box_labels, b.box_labels)
        assert a.size_wh == b.size_wh


def test_written_lines_keep_attribute_names_and_multilabel() -> None:
    src = cls_attr(cls_attr(det_line(), "species", "tabby"), "mood", "calm")
    ds, _ = parse(src)
    (line,) = dataset_to_ground_truth(ds, ref_prefix="s3://new-bucket/")
    assert line["source-ref"] == "s3://new-bucket/images/a.jpg"
    assert line["boxes"]["annotations"] == [
        {"class_id": 0, "left": 10, "top": 20, "width": 30, "height": 40}
    ]
    assert line["species-metadata"]["class-name"] == "tabby"
    assert line["mood-metadata"]["class-name"] == "calm"
    back, report = parse(line)
    assert not report.issues
    assert back.labels == ds.labels
