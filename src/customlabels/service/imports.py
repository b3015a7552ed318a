"""Creating a dataset from a COCO, Pascal VOC, YOLO or folder-per-label source in a bucket,
through the format registry's importers (:mod:`customlabels.formats`): the source is read from
the bucket's folder, each image becomes a Ground Truth line whose ``source-ref`` is the image's
``s3://bucket/key``, and the lines are added through UpdateDatasetEntries (the dataset is
created empty first when missing). Images must live in the same bucket as the source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from customlabels.errors import InvalidParameterError, InvalidS3ObjectError
from customlabels.service.browse import ensure_dataset
from customlabels.service.context import Context
from customlabels.service.datasets import update_dataset_entries

__all__ = ["import_dataset"]


def _local(ctx: Context, bucket: str, key: str, field: str) -> Path:
    path = ctx.buckets.local_path(bucket, key)
    if path is None:
        raise InvalidParameterError(
            f"{field}: importing this format reads the source from a local bucket folder; "
            "start the server with --buckets DIR (or convert the source to a Ground Truth "
            "manifest with `customlabels datasets convert`)"
        )
    if not path.exists():
        raise InvalidS3ObjectError(f"s3://{bucket}/{key}: no such object or folder")
    return path


def import_dataset(
    ctx: Context,
    project: str,
    dataset_type: str,
    fmt: str,
    bucket: str,
    key: str,
    images_key: str | None = None,
) -> dict[str, Any]:
    """Import ``s3://bucket/key`` (a COCO JSON, a VOC folder, a YOLO folder or data.yaml, or a
    folder of label folders) into the project's ``dataset_type`` dataset.

    Args:
        fmt: a registered format name (``coco``, ``voc``, ``yolo``, ``folders``...).
        images_key: the folder of the images in the bucket, for formats that take one.

    Returns:
        ``{"DatasetArn", "Entries": lines added}``.
    """
    from customlabels.formats import registry
    from customlabels.formats.groundtruth import dataset_to_ground_truth

    source = _local(ctx, bucket, key, "source")
    root = _local(ctx, bucket, "", "bucket").resolve()
    options = {"images_dir": _local(ctx, bucket, images_key, "images")} if images_key else {}
    dataset = registry.load(fmt, source, **options)
    lines = dataset_to_ground_truth(dataset)
    for image, line in zip(dataset.images, lines, strict=True):
        path = image.path.resolve() if image.path is not None else None
        if path is None or root not in path.parents:
            raise InvalidParameterError(
                f"{image.ref}: the image must be a file inside bucket {bucket!r}; got "
                f"{path or 'no file'}"
            )
        line["source-ref"] = f"s3://{bucket}/{path.relative_to(root).as_posix()}"
    dataset_arn = ensure_dataset(ctx, project, dataset_type)
    if lines:
        blob = "\n".join(json.dumps(line, separators=(",", ":")) for line in lines).encode()
        update_dataset_entries(ctx, dataset_arn, {"GroundTruth": blob})
    return {"DatasetArn": dataset_arn, "Entries": len(lines)}
