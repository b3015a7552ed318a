"""Labelling one dataset entry from a person's edits: its boxes (detection) or image-level labels
(classification), saved through :func:`~customlabels.service.datasets.update_dataset_entries`,
the same use case as the API's UpdateDatasetEntries, so the manifest, the API and the console
always agree.

Concurrent edits (two tabs, two people) are detected, not merged: each save names the revision
of the line it started from (:func:`revision`), and a save from a stale revision is refused with
ResourceInUseError, so nothing is overwritten silently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from customlabels.errors import InvalidParameterError, ResourceInUseError
from customlabels.service.browse import entry_row
from customlabels.service.catalog import DatasetEntryRow
from customlabels.service.context import Context
from customlabels.service.datasets import get_dataset, update_dataset_entries

__all__ = ["LabelledBox", "rename_label", "revision", "save_entry_labels", "with_boxes"]

_DETECTION = "groundtruth/object-detection"
_CLASSIFICATION = "groundtruth/image-classification"
_MAX_NAME = 256


@dataclass
class LabelledBox:
    """A box in pixels (``left, top, width, height``) and its label."""

    label: str
    left: float
    top: float
    width: float
    height: float


def revision(line: str) -> str:
    """A short fingerprint of an entry's JSON line (changes whenever the line does)."""
    return hashlib.sha256(line.encode()).hexdigest()[:16]


def _check_name(name: Any, field: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise InvalidParameterError(f"{field}: expected a label name of 1–{_MAX_NAME} characters")
    return name.strip()


def _attribute(obj: dict[str, Any], kind: str, default: str) -> str:
    for key, meta in obj.items():
        if key.endswith("-metadata") and isinstance(meta, dict) and meta.get("type") == kind:
            return key[: -len("-metadata")]
    return default


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def with_boxes(
    obj: dict[str, Any], boxes: list[LabelledBox], size_wh: tuple[int, int]
) -> dict[str, Any]:
    """``obj`` (a manifest line) with its detection attribute replaced by ``boxes`` (clipped to
    the image; ``bounding-box`` when the line has none yet).

    Raises:
        InvalidParameterError: a box under 1 px wide or high once clipped.
    """
    attr = _attribute(obj, _DETECTION, "bounding-box")
    names = sorted(
        {b.label for b in boxes}
        | set((obj.get(attr + "-metadata") or {}).get("class-map", {}).values())
    )
    ids = {n: i for i, n in enumerate(names)}
    w, h = size_wh
    annotations = []
    for i, b in enumerate(boxes):
        left, top = max(0.0, b.left), max(0.0, b.top)
        right, bottom = min(float(w), b.left + b.width), min(float(h), b.top + b.height)
        if right - left < 1 or bottom - top < 1:
            raise InvalidParameterError(
                f"boxes[{i}]: expected a box at least 1 px wide and high inside the "
                f"{w}×{h} image, got {b}"
            )
        annotations.append(
            {
                "class_id": ids[b.label],
                "left": round(left),
                "top": round(top),
                "width": round(right - left),
                "height": round(bottom - top),
            }
        )
    obj[attr] = {"image_size": [{"width": w, "height": h, "depth": 3}], "annotations": annotations}
    meta = dict(obj.get(attr + "-metadata") or {})
    meta.update(
        {
            "objects": [{"confidence": 1} for _ in annotations],
            "class-map": {str(i): n for n, i in ids.items()},
            "type": _DETECTION,
            "human-annotated": "yes",
            "creation-date": _now(),
            "job-name": meta.get("job-name", "labeling-job/customlabels-console"),
        }
    )
    obj[attr + "-metadata"] = meta
    return obj


def _with_image_labels(obj: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    for key in [
        k
        for k, m in obj.items()
        if k.endswith("-metadata") and isinstance(m, dict) and m.get("type") == _CLASSIFICATION
    ]:
        obj.pop(key)
        obj.pop(key[: -len("-metadata")], None)
    for i, name in enumerate(sorted(set(labels))):
        attr = "image-label" if i == 0 else f"image-label-{i}"
        obj[attr] = 1
        obj[attr + "-metadata"] = {
            "confidence": 1,
            "class-name": name,
            "human-annotated": "yes",
            "creation-date": _now(),
            "type": _CLASSIFICATION,
            "job-name": "labeling-job/customlabels-console",
        }
    return obj


def save_entry_labels(
    ctx: Context,
    dataset_arn: str,
    entry_id: int,
    base_revision: str,
    boxes: list[LabelledBox] | None = None,
    image_labels: list[str] | None = None,
    size_wh: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Replace an entry's boxes and/or image-level labels.

    Args:
        base_revision: :func:`revision` of the line the edit started from.
        boxes: the entry's boxes after the edit (None: leave its boxes alone).
        image_labels: its image-level labels after the edit (None: leave them alone).
        size_wh: the image's ``(width, height)``, needed when the line does not say.

    Returns:
        ``{"Revision": the new revision, "Boxes": n}``.

    Raises:
        ResourceInUseError: the entry changed since ``base_revision`` (another tab saved).
        InvalidParameterError: a box outside the image or a bad label name.
    """
    with ctx.catalog.session() as s:
        row = entry_row(s, dataset_arn, entry_id)
        line = row.line
    if revision(line) != base_revision:
        raise ResourceInUseError(
            f"entry {entry_id}: changed since you opened it (another tab or person saved); "
            "reload to see the current labels"
        )
    obj = json.loads(line)
    if boxes is not None:
        boxes = [
            LabelledBox(_check_name(b.label, f"boxes[{i}].label"), b.left, b.top, b.width, b.height)
            for i, b in enumerate(boxes)
        ]
        attr = _attribute(obj, _DETECTION, "")
        sizes = ((obj.get(attr) or {}).get("image_size") or [{}]) if attr else [{}]
        known = (sizes[0].get("width"), sizes[0].get("height"))
        size = size_wh or (known if all(known) else None)
        if size is None:
            raise InvalidParameterError("size_wh: the image's size is needed to save boxes")
        obj = with_boxes(obj, boxes, (int(size[0]), int(size[1])))
    if image_labels is not None:
        obj = _with_image_labels(
            obj, [_check_name(n, f"image_labels[{i}]") for i, n in enumerate(image_labels)]
        )
    new_line = json.dumps(obj, separators=(",", ":"))
    update_dataset_entries(ctx, dataset_arn, {"GroundTruth": new_line.encode()})
    with ctx.catalog.session() as s:
        saved = entry_row(s, dataset_arn, entry_id).line
    return {"Revision": revision(saved), "Boxes": len(boxes or [])}


def rename_label(ctx: Context, dataset_arn: str, old: str, new: str | None) -> dict[str, Any]:
    """Rename a label in every entry of a dataset, or delete it (``new=None``: its boxes and
    image-level labels go). One UpdateDatasetEntries call with every changed line.

    Returns:
        ``{"Entries": number of entries changed}``.
    """
    old = _check_name(old, "label")
    target = None if new is None else _check_name(new, "new label")
    changed: list[str] = []
    with ctx.catalog.session() as s:
        ds = get_dataset(s, dataset_arn)
        rows = s.scalars(
            select(DatasetEntryRow).where(
                DatasetEntryRow.dataset_id == ds.id,
                DatasetEntryRow.labels.contains(json.dumps(old) + ":"),
            )
        ).all()
        lines = [r.line for r in rows]
    for line in lines:
        obj = json.loads(line)
        for key in [k for k in obj if k.endswith("-metadata")]:
            meta, attr = obj[key], key[: -len("-metadata")]
            if not isinstance(meta, dict):
                continue
            if meta.get("type") == _CLASSIFICATION and meta.get("class-name") == old:
                if target is None:
                    obj.pop(key)
                    obj.pop(attr, None)
                else:
                    meta["class-name"] = target
            elif meta.get("type") == _DETECTION:
                _rename_in_boxes(obj, attr, meta, old, target)
        changed.append(json.dumps(obj, separators=(",", ":")))
    if changed:
        update_dataset_entries(ctx, dataset_arn, {"GroundTruth": "\n".join(changed).encode()})
    return {"Entries": len(changed)}


def _rename_in_boxes(
    obj: dict[str, Any], attr: str, meta: dict[str, Any], old: str, new: str | None
) -> None:
    cmap = {str(k): v for k, v in (meta.get("class-map") or {}).items()}
    ids = [k for k, v in cmap.items() if v == old]
    if not ids:
        return
    if new is not None:
        existing = next((k for k, v in cmap.items() if v == new), None)
        for k in ids:
            if existing is None:
                cmap[k] = new
            else:  # merging into a label the line already has
                cmap.pop(k)
                for ann in (obj.get(attr) or {}).get("annotations", []):
                    if str(ann.get("class_id")) == k:
                        ann["class_id"] = int(existing)
        meta["class-map"] = cmap
        return
    body = obj.get(attr) or {}
    keep = [
        (ann, o)
        for ann, o in zip(
            body.get("annotations", []),
            meta.get("objects") or [{}] * len(body.get("annotations", [])),
            strict=False,
        )
        if str(ann.get("class_id")) not in ids
    ]
    body["annotations"] = [a for a, _ in keep]
    meta["objects"] = [o for _, o in keep]
    for k in ids:
        cmap.pop(k)
    meta["class-map"] = cmap
