"""Adding images from a person's computer to a dataset: each image is checked like a
DetectCustomLabels image from a bucket (JPEG or PNG by content, size limits, fully decodable),
written to ``s3://<bucket>/uploads/<project>/<file name>``, and added as an unlabelled entry
through UpdateDatasetEntries (so it can be labelled next). One image per call: a bad file is
refused with the service's error and the others still go through.
"""

from __future__ import annotations

import json
import re
from typing import Any

from customlabels.errors import InvalidParameterError
from customlabels.io.images import decode_image, sniff_format
from customlabels.service.browse import ensure_dataset
from customlabels.service.context import Context
from customlabels.service.datasets import list_dataset_entries, update_dataset_entries

__all__ = ["UPLOAD_PREFIX", "upload_image"]

UPLOAD_PREFIX = "uploads"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(filename: str) -> str:
    """A file name reduced to ``[A-Za-z0-9._-]`` (no folders, no leading dots)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip(".")[:200]
    if not cleaned or cleaned in {"_", "-"}:
        raise InvalidParameterError(
            f"file name: expected a name with letters or digits, got {filename!r}"
        )
    return cleaned


def upload_image(
    ctx: Context, project: str, dataset_type: str, bucket: str, filename: str, data: bytes
) -> dict[str, Any]:
    """Store one uploaded image and add it to the project's ``dataset_type`` dataset (created
    empty when missing).

    Returns:
        ``{"SourceRef": "s3://...", "Size": [w, h]}``.

    Raises:
        InvalidImageError: not a JPEG/PNG by content, or truncated/corrupt.
        ImageTooLargeError: over the S3 object limits (bytes, sides, pixels).
        InvalidS3ObjectError: the bucket does not exist.
    """
    name = _safe_name(filename)
    limits = ctx.settings.s3_limits
    sniff_format(data, name)
    image = decode_image(data, name, limits)  # refuses truncated and oversized images
    store = ctx.buckets.store(bucket)
    dataset_arn = ensure_dataset(ctx, project, dataset_type)  # the project exists: its name is safe
    key = f"{UPLOAD_PREFIX}/{project}/{name}"
    store.put(key, data, "image/png" if data.startswith(b"\x89PNG") else "image/jpeg")
    ref = f"s3://{bucket}/{key}"
    existing = list_dataset_entries(ctx, dataset_arn, source_ref_contains=ref)["DatasetEntries"]
    if not any(json.loads(line).get("source-ref") == ref for line in existing):
        # a new image; the same file uploaded again keeps its labels
        line = json.dumps({"source-ref": ref}).encode()
        update_dataset_entries(ctx, dataset_arn, {"GroundTruth": line})
    return {"SourceRef": ref, "Size": list(image.size)}
