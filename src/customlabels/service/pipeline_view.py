"""The pipeline as a person watches it: for the bucket ``serve --pipeline-bucket`` names (the
one ``customlabels pipeline run`` processes), the queue's counts, the newest results with their
boxes, the failed images with their error; and "add to dataset": a result's image with the
model's boxes becomes an entry of a project's dataset, to be corrected on the labelling page and
trained on again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from customlabels.errors import (
    CustomLabelsError,
    InvalidParameterError,
    ResourceNotFoundError,
)
from customlabels.io.images import read_size_wh
from customlabels.pipeline.keys import error_key, result_key
from customlabels.service.browse import ensure_dataset
from customlabels.service.context import Context
from customlabels.service.datasets import update_dataset_entries
from customlabels.service.labelling import LabelledBox, with_boxes

__all__ = ["PipelineResult", "add_result_to_dataset", "pipeline_overview"]

_RESULT, _ERROR = ".json", ".error.json"


@dataclass
class PipelineResult:
    """One processed image: its key, and either its labels or its error.

    Attributes:
        labels: the result's ``CustomLabels`` as DetectCustomLabels returns them.
        size_wh: the image's size in pixels (None when it has no box or cannot be read).
        boxes: the labels with a ``Geometry``, in pixels, to draw on the image.
    """

    key: str
    processed_at: str
    labels: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, str] | None = None
    size_wh: tuple[int, int] | None = None
    boxes: list[LabelledBox] = field(default_factory=list)


def _pixel_boxes(labels: list[dict[str, Any]], size_wh: tuple[int, int]) -> list[LabelledBox]:
    """The labels' relative ``Geometry.BoundingBox`` (0–1) as pixel boxes (image-level labels,
    without a geometry, are left out)."""
    w, h = size_wh
    return [
        LabelledBox(
            str(lab["Name"]),
            lab["Geometry"]["BoundingBox"]["Left"] * w,
            lab["Geometry"]["BoundingBox"]["Top"] * h,
            lab["Geometry"]["BoundingBox"]["Width"] * w,
            lab["Geometry"]["BoundingBox"]["Height"] * h,
        )
        for lab in labels
        if lab.get("Geometry")
    ]


def _with_boxes(ctx: Context, bucket: str, item: PipelineResult) -> None:
    """Set ``item``'s size and pixel boxes (reads the image for its size). An unreadable image
    or a malformed geometry leaves the result without boxes: its labels are still listed."""
    if not any(isinstance(lab, dict) and lab.get("Geometry") for lab in item.labels):
        return
    try:
        data = ctx.buckets.get(bucket, item.key, max_bytes=ctx.settings.s3_limits.max_bytes)
        size_wh = read_size_wh(data, item.key, ctx.settings.s3_limits)
        item.boxes = _pixel_boxes(item.labels, size_wh)
    except (CustomLabelsError, KeyError, TypeError, ValueError):
        return
    item.size_wh = size_wh


def _bucket(ctx: Context) -> str:
    bucket = ctx.settings.pipeline_bucket
    if not bucket:
        raise InvalidParameterError(
            "this server watches no bucket: start it with --pipeline-bucket NAME (the bucket "
            "`customlabels pipeline run` processes)"
        )
    return bucket


def pipeline_overview(ctx: Context, newest: int = 24) -> dict[str, Any]:
    """Counts by status (when the embedded queue is readable), the newest results with their
    boxes in pixels (each result's image header is read for its size), the failures, and the
    model folder when this server runs the pipeline itself (``serve --pipeline-model``)."""
    from customlabels.pipeline.status import embedded_status

    bucket = _bucket(ctx)
    store = ctx.buckets.store(bucket)
    docs = sorted(
        (o for o in store.list() if o.key.endswith(_RESULT)),
        key=lambda o: o.last_modified,
        reverse=True,
    )
    results: list[PipelineResult] = []
    failed: list[PipelineResult] = []
    for info in docs:
        is_error = info.key.endswith(_ERROR)
        if len(failed if is_error else results) >= newest:
            continue
        try:
            doc = json.loads(store.get(info.key))
        except (CustomLabelsError, ValueError):
            continue
        image_key = info.key[: -len(_ERROR if is_error else _RESULT)]
        item = PipelineResult(image_key, str(doc.get("ProcessedAt", "")))
        if is_error:
            item.error = doc.get("Error") or {}
            failed.append(item)
        else:
            item.labels = list(doc.get("CustomLabels") or [])
            _with_boxes(ctx, bucket, item)
            results.append(item)
    counts: dict[str, Any] | None = None
    local = ctx.buckets.local_path(bucket, "")
    if local is not None:
        try:
            counts = embedded_status(local)
        except InvalidParameterError:
            counts = None
    model = ctx.settings.pipeline_model
    return {
        "bucket": bucket,
        "counts": counts,
        "results": results,
        "failed": failed,
        "model": str(model) if model is not None else None,
    }


def add_result_to_dataset(
    ctx: Context, project: str, dataset_type: str, key: str
) -> dict[str, Any]:
    """Add a processed image, with the model's boxes as its labels, to a project's dataset.

    Returns:
        ``{"DatasetArn", "SourceRef", "Boxes"}``.
    """
    bucket = _bucket(ctx)
    store = ctx.buckets.store(bucket)
    try:
        doc = json.loads(store.get(result_key(key)))
    except (CustomLabelsError, ValueError):
        if store.head(error_key(key)) is not None:
            raise InvalidParameterError(f"{key}: the pipeline failed on this image") from None
        raise ResourceNotFoundError(f"{key}: no pipeline result in bucket {bucket}") from None
    data = ctx.buckets.get(bucket, key, max_bytes=ctx.settings.s3_limits.max_bytes)
    w, h = read_size_wh(data, key, ctx.settings.s3_limits)
    boxes = _pixel_boxes(list(doc.get("CustomLabels") or []), (w, h))
    ref = f"s3://{bucket}/{key}"
    line = with_boxes({"source-ref": ref}, boxes, (w, h))
    line["bounding-box-metadata"]["human-annotated"] = "no"  # the model's, until corrected
    dataset_arn = ensure_dataset(ctx, project, dataset_type)
    update_dataset_entries(ctx, dataset_arn, {"GroundTruth": json.dumps(line).encode()})
    return {"DatasetArn": dataset_arn, "SourceRef": ref, "Boxes": len(boxes)}
