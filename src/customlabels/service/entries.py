"""Dataset entries: one Ground Truth JSON line each, summarised for filtering and statistics.

The full validation (image checks, the service's error codes) belongs to the datasets area; the
catalog only needs, per line, its ``source-ref``, label names, box count and whether it is
usable, which this reads from the line's label attributes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from customlabels.errors import ManifestError

__all__ = ["Entry", "parse_entry", "parse_manifest", "split_entries"]

_DETECTION = "groundtruth/object-detection"
_CLASSIFICATION = "groundtruth/image-classification"


@dataclass
class Entry:
    """One manifest line.

    Attributes:
        source_ref: ``s3://bucket/key`` of the image ("" when missing).
        line: the line as compact JSON.
        labels: ``{label name: number of its boxes}`` (0 for an image-level label).
        num_boxes: number of bounding boxes.
        error: why the line is unusable ("" when it is fine).
    """

    source_ref: str
    line: str
    labels: dict[str, int] = field(default_factory=dict)
    num_boxes: int = 0
    error: str = ""


def parse_entry(text: str, where: str = "line") -> Entry:
    """Summarise one Ground Truth JSON line (never raises: problems go to ``error``)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return Entry("", text.strip(), error=f"{where}: ERROR_INVALID_JSON_LINE ({exc.msg})")
    if not isinstance(obj, dict):
        return Entry("", text.strip(), error=f"{where}: ERROR_INVALID_JSON_LINE (not an object)")
    line = json.dumps(obj, separators=(",", ":"))
    ref = obj.get("source-ref")
    if not isinstance(ref, str) or not ref:
        return Entry("", line, error=f"{where}: ERROR_MISSING_SOURCE_REF")
    labels: dict[str, int] = {}
    boxes = 0
    try:
        for key, meta in obj.items():
            if not key.endswith("-metadata") or not isinstance(meta, dict):
                continue
            attr = key[: -len("-metadata")]
            kind = meta.get("type")
            if kind == _DETECTION:
                class_map: dict[str, Any] = meta.get("class-map", {})
                for ann in obj[attr].get("annotations", []):
                    name = str(class_map[str(ann["class_id"])])
                    labels[name] = labels.get(name, 0) + 1
                    boxes += 1
            elif kind == _CLASSIFICATION:
                labels.setdefault(str(meta["class-name"]), 0)
            else:
                return Entry(ref, line, error=f"{where}: ERROR_UNSUPPORTED_USE_CASE_TYPE {kind!r}")
    except (KeyError, TypeError, AttributeError) as exc:
        return Entry(
            ref, line, error=f"{where}: ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT (missing {exc})"
        )
    return Entry(ref, line, dict(sorted(labels.items())), boxes)


def parse_manifest(data: bytes, source: str) -> list[Entry]:
    """Every non-blank line of a manifest, in order (later duplicates of a source-ref win)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{source}: not UTF-8 JSON Lines ({exc})") from None
    out: dict[str, Entry] = {}
    bad: list[Entry] = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        entry = parse_entry(raw, f"{source}:{n}")
        if entry.source_ref:
            out[entry.source_ref] = entry
        else:  # kept (and counted as an error entry) under a key that names the line
            entry.source_ref = f"#{source}:{n}"
            bad.append(entry)
    return [*out.values(), *bad]


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
