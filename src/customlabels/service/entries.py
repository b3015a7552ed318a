"""Dataset entries: one Ground Truth JSON line each, summarised for filtering and statistics.

The full validation (image checks, the service's error codes) belongs to the datasets area; the
catalog only needs, per line, its ``source-ref``, label names, box count and whether it is
usable, which this reads from the line's label attributes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from customlabels.errors import ManifestError

__all__ = ["Entry", "parse_entry", "parse_manifest", "split_refs"]

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


def split_refs(
    refs: list[str], test_fraction: float = 0.2, seed: int = 0
) -> tuple[set[str], set[str]]:
    """Split source-refs into ``(train, test)``: a fixed ``test_fraction`` chosen by a seeded hash.

    Deterministic: the same refs always split the same way, whatever their order. At least one
    image lands on each side when there are two or more.
    """
    import hashlib

    def key(ref: str) -> str:
        return hashlib.sha256(f"{seed}:{ref}".encode()).hexdigest()

    ordered = sorted(refs, key=key)
    n_test = round(len(ordered) * test_fraction)
    if len(ordered) >= 2:
        n_test = min(max(n_test, 1), len(ordered) - 1)
    return set(ordered[n_test:]), set(ordered[:n_test])
