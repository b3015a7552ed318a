"""Dataset entries from real Ground Truth lines, parsed by the formats area's parser; the split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customlabels.formats.groundtruth import read_ground_truth
from customlabels.service.entries import parse_manifest, split_entries

BOX_LINE = {
    "source-ref": "s3://b/k.jpg",
    "a": {
        "image_size": [{"width": 100, "height": 80, "depth": 3}],
        "annotations": [{"class_id": 0, "left": 10, "top": 10, "width": 20, "height": 20}],
    },
    "a-metadata": {"type": "groundtruth/object-detection", "class-map": {"0": "cell"}},
}


def _with_box(**box: int) -> str:
    line = json.loads(json.dumps(BOX_LINE))
    line["a"]["annotations"].append({"class_id": 0} | box)
    return json.dumps(line)


def test_real_box_lines_give_labels_and_box_counts(bccd_manifest: Path) -> None:
    lines = bccd_manifest.read_text().splitlines()
    parsed = parse_manifest(bccd_manifest.read_bytes(), "bccd")
    assert len(parsed.entries) == len([line for line in lines if line.strip()])
    first = parsed.entries[0]
    raw = json.loads(lines[0])
    assert first.source_ref == raw["source-ref"]
    assert first.num_boxes == len(raw["cell-labels"]["annotations"]) == sum(first.labels.values())
    assert set(first.labels) <= {"RBC", "WBC", "Platelets"}
    assert not any(e.error for e in parsed.entries)
    # the boxes the validator drops (BCCD's two zero-area boxes) are not counted either
    dataset, _ = read_ground_truth(bccd_manifest, check_files=False)
    assert sum(e.num_boxes for e in parsed.entries) == dataset.num_boxes


def test_image_level_lines_have_labels_without_boxes(bee_crops_manifest: Path) -> None:
    (entry, *_) = parse_manifest(bee_crops_manifest.read_bytes(), "crops").entries
    assert entry.error == "" and entry.num_boxes == 0
    assert list(entry.labels.values()) == [0]


@pytest.mark.parametrize(
    ("line", "code", "usable", "boxes"),
    [
        ("{not json", "ERROR_INVALID_JSON_LINE", False, 0),
        ("[1, 2]", "ERROR_INVALID_JSON_LINE", False, 0),
        ('{"x": 1}', "ERROR_MISSING_SOURCE_REF", False, 0),
        (
            '{"source-ref": "s3://b/k.jpg", "a": {}, "a-metadata": {"type": "groundtruth/other"}}',
            "ERROR_UNSUPPORTED_USE_CASE_TYPE",
            False,
            0,
        ),
        # the two disagreements of issue 12: both now as `dataset validate` says
        (_with_box(left=90, top=10, width=20, height=20), "ERROR_INVALID_BOUNDING_BOX", True, 1),
        (
            _with_box(class_id=3, left=1, top=1, width=5, height=5),
            "ERROR_MISSING_CLASS_MAP_ID",
            True,
            1,
        ),
    ],
)
def test_lines_get_the_validators_codes(line: str, code: str, usable: bool, boxes: int) -> None:
    parsed = parse_manifest(line.encode(), "m")
    (entry,) = parsed.entries
    assert code in [i["code"] for i in entry.issues]
    assert (entry.error == "") == usable
    if not usable:
        assert entry.error.startswith(code) or code in entry.error
    assert entry.num_boxes == boxes


def test_lines_without_source_ref_are_kept_as_errors_under_their_line() -> None:
    parsed = parse_manifest((json.dumps(BOX_LINE) + '\n\n{"x": 1}\n').encode(), "m")
    assert [e.source_ref for e in parsed.entries] == ["s3://b/k.jpg", "#m:2", "#m:3"]
    assert [bool(e.error) for e in parsed.entries] == [False, True, True]
    assert parsed.report.invalid_lines == {2, 3}  # a blank line counts, as the validator counts it


def test_a_repeated_source_ref_replaces_the_earlier_line_with_a_warning() -> None:
    later = _with_box(left=30, top=30, width=20, height=20)
    parsed = parse_manifest((json.dumps(BOX_LINE) + "\n" + later + "\n").encode(), "m")
    (entry,) = parsed.entries
    assert entry.num_boxes == 2 and entry.line == later
    assert "WARNING_DUPLICATE_SOURCE_REF" in [i["code"] for i in entry.issues]


@pytest.mark.parametrize(("bad", "passes"), [(1, True), (2, False)])
def test_the_twenty_percent_rule_is_the_reports(bad: int, passes: bool) -> None:
    good = [json.dumps({**BOX_LINE, "source-ref": f"s3://b/{i}.jpg"}) for i in range(5 - bad)]
    parsed = parse_manifest("\n".join(good + ["{"] * bad).encode(), "m")
    assert parsed.report.check_invalid_fraction() is passes
    codes = [i.code for i in parsed.report.manifest_errors]
    assert codes == ([] if passes else ["ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST"])


def test_split_entries_is_deterministic_and_keeps_labels_on_both_sides(
    bccd_manifest: Path,
) -> None:
    entries = parse_manifest(bccd_manifest.read_bytes(), "bccd").entries[:40]
    folder = bccd_manifest.parent

    def local(ref: str) -> Path:
        return folder / ref.split("/", 3)[3]

    test = split_entries(entries, local)
    assert 4 <= len(test) <= 12
    assert split_entries(entries, local) == test
    train_labels = {n for e in entries if e.source_ref not in test for n in e.labels}
    test_labels = {n for e in entries if e.source_ref in test for n in e.labels}
    assert train_labels == test_labels == {"RBC", "WBC", "Platelets"}
