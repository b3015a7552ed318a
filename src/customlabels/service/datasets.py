"""Use cases on datasets: create (from a Ground Truth manifest in a bucket, or a copy), describe,
list entries and labels, update entries, distribute (train → test), delete.

Entries are stored in the catalog, one JSON line each (see :mod:`customlabels.service.entries`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from customlabels.core.uris import format_s3_uri, parse_s3_uri
from customlabels.errors import (
    CustomLabelsError,
    InvalidParameterError,
    ResourceAlreadyExistsError,
    ResourceInUseError,
    ResourceNotFoundError,
)
from customlabels.formats.report import annotate_line
from customlabels.service.arns import dataset_arn, parse_arn
from customlabels.service.buckets import s3_object
from customlabels.service.catalog import (
    DatasetEntryRow,
    DatasetRow,
    DatasetStatus,
    VersionRow,
    VersionStatus,
)
from customlabels.service.context import Context, now
from customlabels.service.entries import Entry, ParsedManifest, parse_manifest, split_entries
from customlabels.service.projects import get_project, page_size, page_token
from customlabels.service.tags import check_tags, set_tags

__all__ = [
    "create_dataset",
    "delete_dataset",
    "describe_dataset",
    "distribute_dataset_entries",
    "get_dataset",
    "list_dataset_entries",
    "list_dataset_labels",
    "update_dataset_entries",
]


def get_dataset(session: Session, arn: str, field: str = "DatasetArn") -> DatasetRow:
    parse_arn(arn, "dataset", field)
    row = session.scalars(select(DatasetRow).where(DatasetRow.arn == arn)).first()
    if row is None:
        raise ResourceNotFoundError(f"{field}: no dataset {arn}")
    return row


def _locate(ctx: Context) -> Callable[[str], str]:
    """``source-ref`` → its ``s3://`` URL once the bucket is known and the key is safe."""

    def locate(ref: str) -> str:
        bucket, key = parse_s3_uri(ref)
        ctx.buckets.store(bucket)  # InvalidParameterError / InvalidS3ObjectError
        ctx.buckets.local_path(bucket, key)  # UnsafePathError for keys that leave the bucket
        return ref

    return locate


def _exists(ctx: Context) -> Callable[[str], bool]:
    def exists(ref: str) -> bool:
        bucket, key = parse_s3_uri(ref)
        return ctx.buckets.store(bucket).head(key) is not None

    return exists


def _parse(ctx: Context, data: bytes, source: str) -> ParsedManifest:
    """The manifest's entries, with the codes and verdicts of ``dataset validate``."""
    return parse_manifest(data, source, _locate(ctx), _exists(ctx))


def _read_manifest(ctx: Context, source: dict[str, Any]) -> ParsedManifest:
    field = "DatasetSource.GroundTruthManifest.S3Object"
    bucket, key = s3_object((source.get("GroundTruthManifest") or {}).get("S3Object"), field)
    return _parse(ctx, ctx.buckets.get(bucket, key), format_s3_uri(bucket, key))


def _add_entries(session: Session, dataset_id: int, entries: list[Entry]) -> None:
    existing = {
        r.source_ref: r
        for r in session.scalars(
            select(DatasetEntryRow).where(DatasetEntryRow.dataset_id == dataset_id)
        ).all()
    }
    for e in entries:
        row = existing.get(e.source_ref)
        if row is None:
            row = DatasetEntryRow(dataset_id=dataset_id, source_ref=e.source_ref)
            session.add(row)
            existing[e.source_ref] = row
        row.line, row.labels, row.num_boxes, row.error, row.issues = (
            e.line,
            json.dumps(e.labels),
            e.num_boxes,
            e.error,
            json.dumps(e.issues),
        )


def _entry_of(row: DatasetEntryRow) -> Entry:
    return Entry(
        row.source_ref,
        row.line,
        json.loads(row.labels),
        row.num_boxes,
        row.error,
        json.loads(row.issues or "[]"),
    )


def create_dataset(
    ctx: Context,
    project_arn: str,
    dataset_type: str,
    dataset_source: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create the TRAIN or TEST dataset of a project, empty or filled from ``dataset_source``.

    Args:
        dataset_source: ``{"GroundTruthManifest": {"S3Object": {"Bucket", "Name"}}}`` (each
            line checked as ``dataset validate`` checks it; over 20 % invalid lines make the
            dataset CREATE_FAILED) or ``{"DatasetArn": ...}`` (a copy of another dataset's
            entries); not both.
        tags: kept on the dataset (ListTagsForResource).
    """
    if dataset_type not in ("TRAIN", "TEST"):
        raise InvalidParameterError(f"DatasetType: expected TRAIN or TEST, got {dataset_type!r}")
    source = dataset_source or {}
    if source.get("GroundTruthManifest") and source.get("DatasetArn"):
        raise InvalidParameterError(
            "DatasetSource: expected one of GroundTruthManifest or DatasetArn, got both"
        )
    tag_map = check_tags(tags)
    entries: list[Entry] = []
    failure = ""
    copy_from = source.get("DatasetArn")
    if source.get("GroundTruthManifest"):
        manifest = _read_manifest(ctx, source)
        entries = manifest.entries
        if not manifest.report.check_invalid_fraction():
            failure = f"{manifest.report.manifest_errors[0].message}; first: {manifest.first_error}"
    with ctx.catalog.session() as s:
        project = get_project(s, project_arn)
        if any(d.dataset_type == dataset_type for d in project.datasets):
            raise ResourceAlreadyExistsError(
                f"DatasetType: project {project.name} already has a {dataset_type} dataset"
            )
        if copy_from:
            src = get_dataset(s, copy_from, "DatasetSource.DatasetArn")
            entries = [
                _entry_of(r)
                for r in s.scalars(
                    select(DatasetEntryRow)
                    .where(DatasetEntryRow.dataset_id == src.id)
                    .order_by(DatasetEntryRow.id)  # insertion order on every backend
                ).all()
            ]
        created = now()
        status, code, message = DatasetStatus.CREATE_COMPLETE, "SUCCESS", ""
        if failure:
            status, code, message = DatasetStatus.CREATE_FAILED, "CLIENT_ERROR", failure
        row = DatasetRow(
            project_id=project.id,
            dataset_type=dataset_type,
            arn=dataset_arn(project.name, dataset_type, int(created * 1000)),
            created_at=created,
            updated_at=created,
            status=status.value,
            status_message=message,
            status_message_code=code,
        )
        s.add(row)
        s.flush()
        if status is DatasetStatus.CREATE_COMPLETE:
            _add_entries(s, row.id, entries)
        set_tags(s, row.arn, tag_map)
        return {"DatasetArn": row.arn}


def _stats(session: Session, dataset_id: int) -> dict[str, int]:
    base = (
        select(func.count())
        .select_from(DatasetEntryRow)
        .where(DatasetEntryRow.dataset_id == dataset_id)
    )
    total = session.scalar(base) or 0
    errors = session.scalar(base.where(DatasetEntryRow.error != "")) or 0
    labels: set[str] = set()
    labelled = 0
    for text in session.scalars(
        select(DatasetEntryRow.labels).where(
            DatasetEntryRow.dataset_id == dataset_id, DatasetEntryRow.error == ""
        )
    ):
        names = json.loads(text)
        labels.update(names)
        labelled += bool(names)
    return {
        "LabeledEntries": labelled,
        "TotalEntries": total,
        "TotalLabels": len(labels),
        "ErrorEntries": errors,
    }


def describe_dataset(ctx: Context, dataset_arn: str) -> dict[str, Any]:
    with ctx.catalog.session() as s:
        row = get_dataset(s, dataset_arn)
        return {
            "DatasetDescription": {
                "CreationTimestamp": row.created_at,
                "LastUpdatedTimestamp": row.updated_at,
                "Status": row.status,
                "StatusMessage": row.status_message,
                "StatusMessageCode": row.status_message_code,
                "DatasetStats": _stats(s, row.id),
            }
        }


def list_dataset_entries(
    ctx: Context,
    dataset_arn: str,
    contains_labels: list[str] | None = None,
    labeled: bool | None = None,
    source_ref_contains: str | None = None,
    has_errors: bool | None = None,
    next_token: str | None = None,
    max_results: int | None = None,
) -> dict[str, Any]:
    """The dataset's JSON lines matching every given filter, in insertion order.

    A line with problems carries them in an ``"errors"`` list (``{code, message, field,
    severity}``), as ``customlabels dataset validate --annotated`` writes it; ``has_errors``
    selects the lines that are unusable (ErrorEntries of DescribeDataset).
    """
    start, size = page_token(next_token), page_size(max_results)
    wanted = set(contains_labels or [])
    out: list[str] = []
    more = False
    with ctx.catalog.session() as s:
        row = get_dataset(s, dataset_arn)
        query = select(DatasetEntryRow).where(DatasetEntryRow.dataset_id == row.id)
        if source_ref_contains:
            query = query.where(DatasetEntryRow.source_ref.contains(source_ref_contains))
        if has_errors is not None:
            query = query.where(
                DatasetEntryRow.error != "" if has_errors else DatasetEntryRow.error == ""
            )
        seen = 0
        for entry in s.scalars(query.order_by(DatasetEntryRow.id)):
            names = set(json.loads(entry.labels))
            if labeled is not None and bool(names) != labeled:
                continue
            if wanted and not names & wanted:
                continue
            seen += 1
            if seen <= start:
                continue
            if len(out) == size:
                more = True
                break
            out.append(annotate_line(entry.line, json.loads(entry.issues or "[]")))
    result: dict[str, Any] = {"DatasetEntries": out}
    if more:
        result["NextToken"] = str(start + size)
    return result


def list_dataset_labels(
    ctx: Context, dataset_arn: str, next_token: str | None = None, max_results: int | None = None
) -> dict[str, Any]:
    start, size = page_token(next_token), page_size(max_results)
    counts: dict[str, list[int]] = {}
    with ctx.catalog.session() as s:
        row = get_dataset(s, dataset_arn)
        for text in s.scalars(
            select(DatasetEntryRow.labels).where(DatasetEntryRow.dataset_id == row.id)
        ):
            for name, boxes in json.loads(text).items():
                entry = counts.setdefault(name, [0, 0])
                entry[0] += 1
                entry[1] += int(boxes)
    names = sorted(counts)
    page = names[start : start + size]
    result: dict[str, Any] = {
        "DatasetLabelDescriptions": [
            {
                "LabelName": n,
                "LabelStats": {"EntryCount": counts[n][0], "BoundingBoxCount": counts[n][1]},
            }
            for n in page
        ]
    }
    if start + size < len(names):
        result["NextToken"] = str(start + size)
    return result


def update_dataset_entries(
    ctx: Context, dataset_arn: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Add or replace entries (matched by ``source-ref``) from ``Changes.GroundTruth`` JSON lines.

    ``GroundTruth`` is the raw bytes (the API decodes the base64 of the JSON protocol) or base64
    text.
    """
    blob = (changes or {}).get("GroundTruth")
    if isinstance(blob, str):
        blob = base64.b64decode(blob)
    if not isinstance(blob, bytes | bytearray) or not blob:
        raise InvalidParameterError("Changes.GroundTruth: expected JSON Lines, got nothing")
    manifest = _parse(ctx, bytes(blob), "Changes.GroundTruth")
    if manifest.report.invalid_lines:
        raise InvalidParameterError(f"Changes.GroundTruth: {manifest.first_error}")
    with ctx.catalog.session() as s:
        row = get_dataset(s, dataset_arn)
        _add_entries(s, row.id, manifest.entries)
        row.updated_at = now()
        row.status = DatasetStatus.UPDATE_COMPLETE.value
    return {}


def distribute_dataset_entries(ctx: Context, datasets: list[dict[str, str]]) -> dict[str, Any]:
    """Move 20% of the TRAIN dataset's entries into the project's empty TEST dataset.

    The split is the datasets area's group-aware one (:func:`split_entries`): near-duplicate
    frames stay on one side, labels appear on both sides where possible.
    """
    if not isinstance(datasets, list) or len(datasets) != 2:
        raise InvalidParameterError(
            f"Datasets: expected [{{Arn: TRAIN}}, {{Arn: TEST}}] of one project, got {datasets!r}"
        )
    with ctx.catalog.session() as s:
        rows = [get_dataset(s, d.get("Arn", ""), "Datasets.Arn") for d in datasets]
        by_type = {r.dataset_type: r for r in rows}
        if set(by_type) != {"TRAIN", "TEST"} or rows[0].project_id != rows[1].project_id:
            raise InvalidParameterError(
                "Datasets: expected the TRAIN and the TEST dataset of one project"
            )
        train, test = by_type["TRAIN"], by_type["TEST"]
        count = select(func.count()).select_from(DatasetEntryRow)
        if s.scalar(count.where(DatasetEntryRow.dataset_id == test.id)):
            raise InvalidParameterError(f"Datasets: the TEST dataset {test.arn} is not empty")
        # ordered: without ORDER BY, PostgreSQL returns updated rows last (the split would
        # then differ from SQLite's for the same calls)
        entries = s.scalars(
            select(DatasetEntryRow)
            .where(DatasetEntryRow.dataset_id == train.id)
            .order_by(DatasetEntryRow.id)
        ).all()
        usable = [_entry_of(e) for e in entries if not e.error]
        test_refs = split_entries(usable, lambda ref: _local_file(ctx, ref))
        for e in entries:
            if e.source_ref in test_refs:
                e.dataset_id = test.id
        train.updated_at = test.updated_at = now()
    return {}


def _local_file(ctx: Context, ref: str) -> Path | None:
    """The local file behind ``s3://bucket/key`` if buckets are folders and it exists."""
    try:
        bucket, key = parse_s3_uri(ref)
        path = ctx.buckets.local_path(bucket, key)
    except CustomLabelsError:
        return None
    return path if path is not None and path.is_file() else None


def delete_dataset(ctx: Context, dataset_arn: str) -> dict[str, Any]:
    with ctx.catalog.session() as s:
        row = get_dataset(s, dataset_arn)
        training = s.scalars(
            select(VersionRow).where(
                VersionRow.project_id == row.project_id,
                VersionRow.status == VersionStatus.TRAINING_IN_PROGRESS.value,
            )
        ).first()
        if training is not None:
            raise ResourceInUseError(f"DatasetArn: {training.arn} is training from this dataset")
        s.query(DatasetEntryRow).filter(DatasetEntryRow.dataset_id == row.id).delete()
        s.delete(row)
    return {}
