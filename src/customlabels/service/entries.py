"""Dataset entries: the lines of a Ground Truth manifest as the catalog keeps them.

A manifest is parsed by the formats area's parser
(:func:`~customlabels.formats.groundtruth.parse_manifest_lines`) and its images located with
:func:`~customlabels.formats.groundtruth.check_refs`, so each line gets exactly the codes
``customlabels dataset validate`` gives it, and the 20 %-invalid rule is the report's own
(:meth:`~customlabels.formats.report.ValidationReport.check_invalid_fraction`). What is kept per
line is its text, ``source-ref``, label names with box counts (boxes that passed the checks),
whether it is usable, and every problem found on it.

One difference with a manifest read for training, by design: a dataset keeps one entry per
``source-ref`` (UpdateDatasetEntries replaces by ``source-ref``), so a ref repeated in one
manifest replaces the earlier line (``WARNING_DUPLICATE_SOURCE_REF``) instead of merging into it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from customlabels.formats.groundtruth import check_refs, parse_manifest_lines, split_manifest
from customlabels.formats.gt_lines import SOURCE_REF, ParsedLine
from customlabels.formats.report import Issue, Severity, ValidationReport

__all__ = ["Entry", "ParsedManifest", "parse_manifest", "split_entries"]

T = TypeVar("T")


@dataclass
class Entry:
    """One manifest line.

    Attributes:
        source_ref: ``s3://bucket/key`` of the image; ``#<source>:<line>`` for a line without
            one (kept, and counted as an error entry, under a key that names the line).
        line: the line as given.
        labels: ``{label name: number of its boxes}`` (0 for an image-level label).
        num_boxes: number of bounding boxes that passed the checks.
        error: why the line is unusable, ``"CODE: message"`` ("" when it is usable).
        issues: every problem on the line (``{code, message, field, severity}``, as
            ``dataset validate --json`` lists them), usable line or not.
    """

    source_ref: str
    line: str
    labels: dict[str, int] = field(default_factory=dict)
    num_boxes: int = 0
    error: str = ""
    issues: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ParsedManifest:
    """The entries of one manifest (one per ``source-ref``, in order) and the report."""

    entries: list[Entry]
    report: ValidationReport

    @property
    def first_error(self) -> str:
        """``"line N: CODE: message"`` of the first invalid line ("" when there is none)."""
        invalid = sorted(self.report.invalid_lines)
        if not invalid:
            return ""
        issue = next(i for i in self.report.errors if i.line == invalid[0])
        return f"line {invalid[0]}: {issue.code}: {issue.message}"


def _entry(number: int, text: str, parsed: ParsedLine | None, issues: list[Issue]) -> Entry:
    details = [i.detail() for i in issues]
    if parsed is None:
        first = next((i for i in issues if i.severity == Severity.ERROR), None)
        why = f"{first.code}: {first.message}" if first else "ERROR_INVALID_JSON_LINE"
        return Entry("", text, error=why, issues=details)
    labels = dict(Counter(parsed.box_names))
    for name in parsed.image_names:
        labels.setdefault(name, 0)
    return Entry(parsed.ref, text, dict(sorted(labels.items())), len(parsed.boxes), "", details)


def parse_manifest(
    data: bytes,
    source: str,
    locate: Callable[[str], T] | None = None,
    exists: Callable[[T], bool] | None = None,
) -> ParsedManifest:
    """Parse a manifest into entries with the same verdicts as ``dataset validate``.

    Args:
        data: the manifest's bytes (UTF-8 JSON Lines; undecodable bytes are replaced, so the
            line that holds them fails as the validator fails it).
        source: names the manifest in messages and in the keys of lines without a ref.
        locate, exists: where each line's image is and whether it exists (see
            :func:`~customlabels.formats.groundtruth.check_refs`); omitted, refs are not checked.

    Returns:
        The entries in manifest order (a repeated ``source-ref`` keeps its first position and
        its last line) and the report (``total_lines`` and ``invalid_lines`` for the 20 % rule).
    """
    texts = split_manifest(data)
    report = ValidationReport(source=source)
    parsed, _ = parse_manifest_lines(texts, report)
    if locate is not None:
        check_refs(parsed, report, locate, exists)
    by_number = {p.number: p for p in parsed if p.number not in report.invalid_lines}
    numbers: dict[str, int] = {}
    for n in sorted(by_number):
        ref = by_number[n].ref
        if ref in numbers:
            report.warning(
                n,
                "WARNING_DUPLICATE_SOURCE_REF",
                f"{ref} already appears on line {numbers[ref]}; this line replaces it (a dataset "
                "keeps one entry per source-ref)",
                SOURCE_REF,
            )
        numbers[ref] = n
    issues = report.issues_by_line()
    entries: dict[str, Entry] = {}
    for n, text in enumerate(texts, start=1):
        line = by_number.get(n)
        if line is not None and numbers[line.ref] != n:
            continue  # replaced by a later line
        entry = _entry(n, text.strip(), line, issues.get(n, []))
        if line is None:
            ref = report.refs.get(n, "")
            entry.source_ref = ref if ref and ref not in numbers else f"#{source}:{n}"
        entries[entry.source_ref] = entry
    return ParsedManifest(list(entries.values()), report)


def split_entries(
    entries: list[Entry],
    local_path: Callable[[str], Path | None],
    test_fraction: float = 0.2,
    seed: int = 0,
) -> set[str]:
    """Source-refs of the entries to move to the test side, by the datasets area's
    group-aware split (near-duplicates on one side, every label on both sides when possible).

    Args:
        local_path: the local file of a source-ref when there is one (its pixels then help find
            near-duplicates), else None (file names only).
    """
    from customlabels.core.dataset import Dataset, ImageRecord, LabelMap
    from customlabels.datasets.split import split_dataset

    labels = LabelMap(sorted({name for e in entries for name in e.labels}))
    records = []
    for e in entries:
        boxes = [labels.id_of(n) for n, count in e.labels.items() for _ in range(count)]
        records.append(
            ImageRecord(
                ref=e.source_ref,
                path=local_path(e.source_ref),
                boxes=np.tile([0.0, 0.0, 1.0, 1.0], (len(boxes), 1)),  # unit boxes: counts matter
                box_labels=np.array(boxes, dtype=np.int64),
                image_labels=[labels.id_of(n) for n, count in e.labels.items() if count == 0],
            )
        )
    _, test = split_dataset(Dataset(labels, records), test_fraction=test_fraction, seed=seed)
    return {im.ref for im in test.images}
