"""Use cases for people browsing a dataset (the web console): pages of entries with their boxes,
one entry's image (read from its own bucket only), per-label statistics, validation problems with
advice, and moving entries between the TRAIN and TEST datasets.

Entries are addressed by their catalog id *within a dataset*, never by a path or URL the client
chooses: an image is read from the ``source-ref`` stored with the entry, through
:class:`~customlabels.service.buckets.Buckets`, whose keys cannot leave their bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from sqlalchemy import func, select

from customlabels.core.uris import parse_s3_uri
from customlabels.errors import InvalidParameterError, ResourceNotFoundError
from customlabels.service.catalog import DatasetEntryRow
from customlabels.service.context import Context, now
from customlabels.service.datasets import create_dataset, get_dataset
from customlabels.service.projects import describe_projects, get_project, project_arn_of

__all__ = [
    "ADVICE",
    "Box",
    "EntryFilter",
    "EntryView",
    "browse_entries",
    "dataset_overview",
    "ensure_dataset",
    "entry_image",
    "entry_row",
    "get_entry",
    "move_entries",
    "neighbours",
]

# What to do about each validation code (the service's codes, as in the entries' errors).
ADVICE = {
    "ERROR_INVALID_JSON_LINE": "Fix the line's JSON (one object per line) and import it again.",
    "ERROR_MISSING_SOURCE_REF": "Give the line a source-ref: s3://bucket/key of its image.",
    "ERROR_UNSUPPORTED_USE_CASE_TYPE": (
        "Use a Ground Truth object-detection or image-classification label attribute."
    ),
    "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT": (
        "Every annotation needs class_id, left, top, width, height and a class-map entry."
    ),
}
_DETECTION = "groundtruth/object-detection"
_CLASSIFICATION = "groundtruth/image-classification"


@dataclass
class Box:
    """A labelled box in pixels: ``left, top, width, height`` (the manifest's ``ltwh`` form)."""

    label: str
    left: float
    top: float
    width: float
    height: float


@dataclass
class EntryView:
    """One dataset entry as a person sees it.

    Attributes:
        id: the entry's id (stable while it stays in its dataset).
        source_ref: ``s3://bucket/key`` of the image.
        name: the file name (last part of the key).
        labels: ``{label: number of boxes}`` (0 for an image-level label).
        boxes: the bounding boxes (detection entries).
        size_wh: ``(width, height)`` from the manifest, when it says.
        error: why the entry is unusable ("" when fine).
        advice: what to do about ``error``.
    """

    id: int
    source_ref: str
    name: str
    labels: dict[str, int]
    boxes: list[Box] = field(default_factory=list)
    size_wh: tuple[int, int] | None = None
    error: str = ""
    advice: str = ""


@dataclass
class EntryFilter:
    """Filters of the image browser (all optional; combined with AND)."""

    label: str = ""
    unlabelled: bool = False
    errors: bool | None = None
    name: str = ""


def _boxes(line: str) -> tuple[list[Box], tuple[int, int] | None]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return [], None
    boxes: list[Box] = []
    size: tuple[int, int] | None = None
    for key, meta in obj.items() if isinstance(obj, dict) else ():
        if not key.endswith("-metadata") or not isinstance(meta, dict):
            continue
        if meta.get("type") != _DETECTION:
            continue
        body = obj.get(key[: -len("-metadata")]) or {}
        try:
            sizes = body.get("image_size") or []
            if sizes:
                size = (int(sizes[0]["width"]), int(sizes[0]["height"]))
            names = meta.get("class-map", {})
            for ann in body.get("annotations", []):
                boxes.append(
                    Box(
                        str(names.get(str(ann["class_id"]), ann["class_id"])),
                        float(ann["left"]),
                        float(ann["top"]),
                        float(ann["width"]),
                        float(ann["height"]),
                    )
                )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # the entry's error already says what is wrong
    return boxes, size


def _view(row: DatasetEntryRow) -> EntryView:
    boxes, size = _boxes(row.line)
    code = row.error.split(": ", 1)[-1].split(" ", 1)[0] if row.error else ""
    return EntryView(
        id=row.id,
        source_ref=row.source_ref,
        name=row.source_ref.rsplit("/", 1)[-1],
        labels=json.loads(row.labels),
        boxes=boxes,
        size_wh=size,
        error=row.error,
        advice=ADVICE.get(code, ""),
    )


def browse_entries(
    ctx: Context, dataset_arn: str, where: EntryFilter, page: int = 0, per_page: int = 48
) -> tuple[list[EntryView], int]:
    """One page of a dataset's entries matching ``where`` and how many match in all.

    Label filters match on the stored label summary (a JSON object of names), so paging a
    555-image dataset reads only the page's rows plus a count.
    """
    if page < 0 or not 1 <= per_page <= 500:
        raise InvalidParameterError(f"page: expected page ≥ 0, 1–500 per page, got {page}")
    with ctx.catalog.session() as s:
        ds = get_dataset(s, dataset_arn)
        query = select(DatasetEntryRow).where(DatasetEntryRow.dataset_id == ds.id)
        if where.name:
            query = query.where(DatasetEntryRow.source_ref.contains(where.name))
        if where.errors is not None:
            query = query.where(
                DatasetEntryRow.error != "" if where.errors else DatasetEntryRow.error == ""
            )
        if where.unlabelled:
            query = query.where(DatasetEntryRow.labels == "{}")
        if where.label:
            query = query.where(DatasetEntryRow.labels.contains(json.dumps(where.label) + ":"))
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(
            query.order_by(DatasetEntryRow.id).offset(page * per_page).limit(per_page)
        ).all()
        return [_view(r) for r in rows], total


def entry_row(s: Any, dataset_arn: str, entry_id: int) -> DatasetEntryRow:
    ds = get_dataset(s, dataset_arn)
    row = s.get(DatasetEntryRow, entry_id)
    if row is None or row.dataset_id != ds.id:
        raise ResourceNotFoundError(f"entry {entry_id}: not in dataset {dataset_arn}")
    return row


def neighbours(ctx: Context, dataset_arn: str, entry_id: int) -> tuple[int | None, int | None]:
    """The ids of the entries before and after ``entry_id`` in its dataset (None at the ends)."""
    with ctx.catalog.session() as s:
        ds = get_dataset(s, dataset_arn)
        ids = select(DatasetEntryRow.id).where(DatasetEntryRow.dataset_id == ds.id)
        before = s.scalar(
            ids.where(DatasetEntryRow.id < entry_id).order_by(DatasetEntryRow.id.desc()).limit(1)
        )
        after = s.scalar(
            ids.where(DatasetEntryRow.id > entry_id).order_by(DatasetEntryRow.id).limit(1)
        )
    return before, after


def get_entry(ctx: Context, dataset_arn: str, entry_id: int) -> EntryView:
    """One entry of a dataset (ResourceNotFoundError when it is not in that dataset)."""
    with ctx.catalog.session() as s:
        return _view(entry_row(s, dataset_arn, entry_id))


def entry_image(ctx: Context, dataset_arn: str, entry_id: int) -> bytes:
    """The image bytes of one entry, read from its bucket (the S3 object size limit applies).

    Raises:
        ResourceNotFoundError: no such entry in that dataset.
        InvalidS3ObjectError: the object is missing, or its key would leave its bucket.
    """
    with ctx.catalog.session() as s:
        ref = entry_row(s, dataset_arn, entry_id).source_ref
    bucket, key = parse_s3_uri(ref)
    return ctx.buckets.get(bucket, key, max_bytes=ctx.settings.s3_limits.max_bytes)


def dataset_overview(ctx: Context, dataset_arn: str) -> dict[str, Any]:
    """Statistics of a dataset: entries, labelled, errors, and per label its images, boxes and
    median box size in pixels; plus the first 200 invalid entries with advice."""
    labels: dict[str, dict[str, Any]] = {}
    sizes: dict[str, list[tuple[float, float]]] = {}
    total = labelled = 0
    problems: list[EntryView] = []
    with ctx.catalog.session() as s:
        ds = get_dataset(s, dataset_arn)
        for row in s.scalars(
            select(DatasetEntryRow)
            .where(DatasetEntryRow.dataset_id == ds.id)
            .order_by(DatasetEntryRow.id)
        ):
            total += 1
            if row.error:
                if len(problems) < 200:
                    problems.append(_view(row))
                continue
            names = json.loads(row.labels)
            labelled += bool(names)
            for name, count in names.items():
                stat = labels.setdefault(name, {"images": 0, "boxes": 0})
                stat["images"] += 1
                stat["boxes"] += count
            for box in _boxes(row.line)[0]:
                sizes.setdefault(box.label, []).append((box.width, box.height))
        errors = s.scalar(
            select(func.count())
            .select_from(DatasetEntryRow)
            .where(DatasetEntryRow.dataset_id == ds.id, DatasetEntryRow.error != "")
        )
    for name, wh in sizes.items():
        labels[name]["median_wh"] = (median(w for w, _ in wh), median(h for _, h in wh))
    return {
        "entries": total,
        "labelled": labelled,
        "errors": errors or 0,
        "labels": dict(sorted(labels.items())),
        "problems": problems,
    }


def move_entries(
    ctx: Context, project_arn: str, entry_ids: list[int], to_type: str
) -> dict[str, Any]:
    """Move entries of a project's other dataset into its ``to_type`` (TRAIN or TEST) dataset.

    Returns:
        ``{"Moved": n}``.
    """
    if to_type not in ("TRAIN", "TEST"):
        raise InvalidParameterError(f"DatasetType: expected TRAIN or TEST, got {to_type!r}")
    with ctx.catalog.session() as s:
        project = get_project(s, project_arn)
        by_type = {d.dataset_type: d for d in project.datasets}
        if set(by_type) != {"TRAIN", "TEST"}:
            raise InvalidParameterError(
                f"project {project.name}: needs both a TRAIN and a TEST dataset to move images"
            )
        target, source = by_type[to_type], by_type["TEST" if to_type == "TRAIN" else "TRAIN"]
        moved = 0
        for entry_id in entry_ids:
            row = s.get(DatasetEntryRow, entry_id)
            if row is None or row.dataset_id != source.id:
                raise ResourceNotFoundError(
                    f"entry {entry_id}: not in the {source.dataset_type} dataset of {project.name}"
                )
            clash = s.scalars(
                select(DatasetEntryRow).where(
                    DatasetEntryRow.dataset_id == target.id,
                    DatasetEntryRow.source_ref == row.source_ref,
                )
            ).first()
            if clash is not None:
                s.delete(clash)
                s.flush()
            row.dataset_id = target.id
            moved += 1
        source.updated_at = target.updated_at = now()
    return {"Moved": moved}


def ensure_dataset(ctx: Context, project: str, dataset_type: str) -> str:
    """The ARN of project ``project``'s TRAIN or TEST dataset, created empty when missing."""
    if dataset_type not in ("TRAIN", "TEST"):
        raise InvalidParameterError(f"DatasetType: expected TRAIN or TEST, got {dataset_type!r}")
    arn = project_arn_of(ctx, project)
    found = [
        d["DatasetArn"]
        for d in describe_projects(ctx, [project])["ProjectDescriptions"][0]["Datasets"]
        if d["DatasetType"] == dataset_type
    ]
    return str(found[0]) if found else str(create_dataset(ctx, arn, dataset_type)["DatasetArn"])
