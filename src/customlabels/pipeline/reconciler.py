"""Bucket listing -> the images that still need a result (events can be lost; results must not).

One listing of the prefix tells which inputs have no output (``<key>.json`` or
``<key>.error.json``) or an output older than the image. With ``model_version`` it also reads
each output and keeps the images whose result came from another model version. The worker makes
the exact check (same ETag, same model version) before doing any work, so a false positive here
costs a HEAD and a small GET, never a second result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from customlabels.errors import InvalidS3ObjectError
from customlabels.pipeline.keys import error_key, is_input, result_key
from customlabels.storage.base import ObjectInfo, ObjectStore

__all__ = ["find_unprocessed"]


def _version_of(store: ObjectStore, key: str) -> str | None:
    try:
        doc = json.loads(store.get(key))
    except (InvalidS3ObjectError, ValueError):
        return None
    return doc.get("ModelVersion") if isinstance(doc, dict) else None


def find_unprocessed(
    store: ObjectStore, prefix: str, model_version: str | None = None, under: str | None = None
) -> Iterator[ObjectInfo]:
    """Yield the input objects under ``prefix`` whose result is missing or stale.

    Args:
        store: the bucket.
        prefix: normalized input prefix (``test_images/``).
        model_version: also yield images whose output names another model version (one GET per
            output; use at start-up, not on every periodic pass).
        under: list only this sub-prefix of ``prefix`` (a folder that just appeared).
    """
    objects = {o.key: o for o in store.list(under or prefix)}
    for key in sorted(objects):
        info = objects[key]
        if not is_input(key, prefix):
            continue
        out = objects.get(result_key(key)) or objects.get(error_key(key))
        if (
            out is None
            or out.last_modified < info.last_modified
            or (model_version is not None and _version_of(store, out.key) != model_version)
        ):
            yield info
