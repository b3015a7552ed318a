"""COCO object-detection JSON (``images``, ``annotations``, ``categories``).

``bbox`` is ``[left, top, width, height]`` in float pixels (``ltwh``). Image ``file_name`` is
resolved under ``images_dir`` (default: the JSON file's folder) with ``safe_join``. Labels are
the categories in id order. Crowd annotations (``iscrowd: 1``) are regions, not objects: they
are skipped with a warning. COCO has no image-level labels: a classification dataset cannot be
written to it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from customlabels.core.boxes import ltwh_to_xyxy, xyxy_to_ltwh
from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Task
from customlabels.core.uris import s3_key_of
from customlabels.errors import InvalidParameterError, ManifestError, UnsafePathError
from customlabels.formats.checks import check_boxes, check_label_name
from customlabels.formats.files import size_of, write_text_atomic
from customlabels.formats.registry import register_format
from customlabels.formats.report import ValidationReport
from customlabels.io.paths import safe_join

__all__ = ["coco_to_dataset", "dataset_to_coco", "load_coco", "save_coco"]

Resolve = Callable[[str], Path]


def _require_list(data: dict[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key, [] if key == "annotations" else None)
    if not isinstance(value, list):
        raise ManifestError(f"{source}: expected a list under {key!r}, got {type(value).__name__}")
    return value


def coco_to_dataset(
    data: Any,
    report: ValidationReport | None = None,
    resolve: Resolve | None = None,
    source: str = "COCO JSON",
) -> Dataset:
    """Convert a parsed COCO dict to a :class:`Dataset`.

    Record ``line`` numbers are 1-based positions in ``images``; problems are reported with the
    service's codes (an unknown ``category_id`` is ``ERROR_MISSING_CLASS_MAP_ID``).

    Raises:
        ManifestError: ``data`` is not a COCO object (no ``images``/``categories`` lists).
    """
    report = report if report is not None else ValidationReport(source=source)
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: expected a JSON object, got {type(data).__name__}")
    images = _require_list(data, "images", source)
    categories = _require_list(data, "categories", source)
    annotations = _require_list(data, "annotations", source)

    labels = LabelMap()
    cat_ids: dict[int, int] = {}
    for cat in sorted(
        (c for c in categories if isinstance(c, dict) and isinstance(c.get("id"), int)),
        key=lambda c: c["id"],
    ):
        name = check_label_name(cat.get("name"), report, None, f"categories[id={cat['id']}].name")
        if name is not None:
            cat_ids[cat["id"]] = labels.add(name)

    by_image: dict[Any, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for k, ann in enumerate(annotations):
        if isinstance(ann, dict):
            by_image[ann.get("image_id")].append((k, ann))

    records: list[ImageRecord] = []
    report.total_lines += len(images)
    for n, img in enumerate(images, start=1):
        if not isinstance(img, dict) or not isinstance(img.get("file_name"), str):
            report.line_error(
                n, "ERROR_MISSING_SOURCE_REF", "image without a file_name", "file_name"
            )
            continue
        name = img["file_name"]
        w, h = img.get("width"), img.get("height")
        size = (
            (int(w), int(h))
            if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0
            else None
        )
        path = None
        if resolve is not None:
            try:
                path = resolve(name)
            except UnsafePathError as exc:
                report.line_error(n, "ERROR_INVALID_SOURCE_REF_FORMAT", exc.message, "file_name")
                continue
        boxes: list[list[float]] = []
        ids: list[int] = []
        fields: list[str] = []
        for k, ann in by_image.get(img.get("id"), []):
            fld = f"annotations[{k}]"
            if ann.get("iscrowd"):
                report.warning(n, "WARNING_CROWD_ANNOTATION_SKIPPED", "crowd region skipped", fld)
                continue
            bbox = ann.get("bbox")
            if not (
                isinstance(bbox, list)
                and len(bbox) == 4
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
            ):
                report.item_error(
                    n,
                    "ERROR_INVALID_BOUNDING_BOX",
                    f"expected bbox [l, t, w, h], got {bbox!r}",
                    fld,
                )
                continue
            cid = ann.get("category_id")
            if cid not in cat_ids:
                report.item_error(
                    n,
                    "ERROR_MISSING_CLASS_MAP_ID",
                    f"category_id {cid!r} is not a category; box dropped",
                    f"{fld}.category_id",
                )
                continue
            boxes.append([float(v) for v in bbox])
            ids.append(cat_ids[cid])
            fields.append(fld)
        kept, keep = check_boxes(ltwh_to_xyxy(boxes), size, report, n, fields)
        records.append(
            ImageRecord(
                ref=name,
                size_wh=size,
                path=path,
                boxes=kept,
                box_labels=np.asarray(ids, dtype=np.int64)[keep],
                line=n,
                extra={"task": Task.OBJECT_LOCALIZATION, "coco_id": img.get("id")},
            )
        )
    report.use_case = Task.OBJECT_LOCALIZATION
    return Dataset(labels=labels, images=records)


def _file_name(ref: str) -> str:
    return s3_key_of(ref)


def dataset_to_coco(dataset: Dataset) -> dict[str, Any]:
    """Convert a detection dataset to a COCO dict (ids from 1; ``file_name`` is the ref's key).

    Raises:
        InvalidParameterError: the dataset has image-level labels only.
    """
    if dataset.task != Task.OBJECT_LOCALIZATION:
        raise InvalidParameterError(
            "COCO holds boxes; expected a detection dataset, got image-level labels "
            "(write it as groundtruth or folders)"
        )
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, im in enumerate(dataset.images, start=1):
        w, h = size_of(im)
        images.append({"id": i, "file_name": _file_name(im.ref), "width": int(w), "height": int(h)})
        for box, cid in zip(xyxy_to_ltwh(im.boxes).tolist(), im.box_labels.tolist(), strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": int(cid) + 1,
                    "bbox": [float(v) for v in box],
                    "area": float(box[2] * box[3]),
                    "iscrowd": 0,
                }
            )
    categories = [
        {"id": k + 1, "name": n, "supercategory": ""} for k, n in enumerate(dataset.labels)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def load_coco(
    path: Path | str, images_dir: Path | str | None = None, report: ValidationReport | None = None
) -> Dataset:
    """Load a COCO JSON file; ``file_name`` resolves under ``images_dir`` (default: its folder)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read COCO JSON ({exc})") from None
    root = Path(images_dir) if images_dir is not None else path.parent
    report = report if report is not None else ValidationReport(source=str(path))
    return coco_to_dataset(data, report, lambda name: safe_join(root, name), str(path))


def save_coco(dataset: Dataset, path: Path | str) -> None:
    """Write ``dataset`` as one COCO JSON file at ``path``."""
    write_text_atomic(Path(path), json.dumps(dataset_to_coco(dataset)))


register_format(
    "coco",
    load=load_coco,
    save=save_coco,
    description="COCO detection JSON (bbox = [left, top, width, height] pixels)",
    suffixes=(".json",),
)
