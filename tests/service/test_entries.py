"""Dataset entries summarised from real Ground Truth lines; the seeded train/test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customlabels.service.entries import parse_entry, parse_manifest, split_entries


def test_real_box_lines_give_labels_and_box_counts(bccd_manifest: Path) -> None:
    lines = bccd_manifest.read_text().splitlines()
    entries = parse_manifest(bccd_manifest.read_bytes(), "bccd")
    assert len(entries) == len([line for line in lines if line.strip()])
    first = entries[0]
    raw = json.loads(lines[0])
    assert first.source_ref == raw["source-ref"]
    assert first.num_boxes == len(raw["cell-labels"]["annotations"]) == sum(first.labels.values())
    assert set(first.labels) <= {"RBC", "WBC", "Platelets"}
    assert not any(e.error for e in entries)


def test_image_level_lines_have_labels_without_boxes(bee_crops_manifest: Path) -> None:
    entry = parse_entry(bee_crops_manifest.read_text().splitlines()[0])
    assert entry.error == "" and entry.num_boxes == 0
    assert list(entry.labels.values()) == [0]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("{not json", "ERROR_INVALID_JSON_LINE"),
        ("[1, 2]", "ERROR_INVALID_JSON_LINE"),
        ('{"x": 1}', "ERROR_MISSING_SOURCE_REF"),
        (
            '{"source-ref": "s3://b/k.jpg", "a": {}, "a-metadata": {"type": "groundtruth/other"}}',
            "ERROR_UNSUPPORTED_USE_CASE_TYPE",
        ),
        (
            '{"source-ref": "s3://b/k.jpg", "a": {"annotations": [{"class_id": 3}]}, '
            '"a-metadata": {"type": "groundtruth/object-detection", "class-map": {"0": "x"}}}',
            "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
        ),
    ],
)
def test_unusable_lines_carry_the_service_error_code(line: str, code: str) -> None:
    assert code in parse_entry(line, "m:1").error


def test_lines_without_source_ref_are_kept_as_errors_under_their_line() -> None:
    entries = parse_manifest(b'{"source-ref": "s3://b/a.jpg"}\n\n{"x": 1}\n', "m")
    assert [e.source_ref for e in entries] == ["s3://b/a.jpg", "#m:3"]
    assert entries[1].error


def test_split_entries_is_deterministic_and_keeps_labels_on_both_sides(
    bccd_manifest: Path,
) -> None:
    entries = parse_manifest(bccd_manifest.read_bytes(), "bccd")[:40]
    folder = bccd_manifest.parent

    def local(ref: str) -> Path:
        return folder / ref.split("/", 3)[3]

    test = split_entries(entries, local)
    assert 4 <= len(test) <= 12
    assert split_entries(entries, local) == test
    train_labels = {n for e in entries if e.source_ref not in test for n in e.labels}
    test_labels = {n for e in entries if e.source_ref in test for n in e.labels}
    assert train_labels == test_labels == {"RBC", "WBC", "Platelets"}
