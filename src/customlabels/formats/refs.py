"""Resolving ``source-ref`` values to local files, never outside their root.

A manifest points at its images with ``s3://bucket/key``. Resolution, in order:

1. ``bucket`` in ``bucket_map`` → ``bucket_map[bucket] / key``;
2. an S3-compatible endpoint configured (``s3_endpoint_url``) → the object is downloaded once
   into ``cache_dir / bucket / key`` through boto3;
3. otherwise → ``key`` under the manifest's own folder (the layout a labelling job's output
   has once downloaded: ``output.manifest`` beside ``images/``).

A plain relative path (no scheme) is taken under the manifest's folder. Keys go through
:func:`customlabels.io.paths.safe_join`: ``..``, absolute paths and symlinks out of the root are
refused with :class:`~customlabels.errors.UnsafePathError` before anything is read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customlabels.core.uris import is_s3_uri, parse_s3_uri, s3_bucket_of
from customlabels.errors import InvalidParameterError
from customlabels.io.paths import safe_join

__all__ = ["RefError", "RefResolver", "parse_bucket_map"]


class RefError(InvalidParameterError):
    """A reference that is not ``s3://bucket/key`` or a relative path."""


def parse_bucket_map(items: list[str] | None) -> dict[str, Path]:
    """``["bucket=DIR", ...]`` (CLI ``--bucket-map``) → ``{bucket: Path(DIR)}``."""
    out: dict[str, Path] = {}
    for item in items or []:
        bucket, sep, folder = item.partition("=")
        if not sep or not bucket or not folder:
            raise InvalidParameterError(f"--bucket-map: expected BUCKET=DIR, got {item!r}")
        out[s3_bucket_of(bucket) or bucket.rstrip("/")] = Path(folder)
    return out


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "customlabels" / "s3"


@dataclass
class RefResolver:
    """Turns references into local paths under a known root.

    Args:
        base_dir: folder that plain relative refs and unmapped buckets resolve under (the
            manifest's own folder).
        bucket_map: ``{bucket: folder}`` for buckets held elsewhere on disk.
        s3_endpoint_url: an S3-compatible endpoint; unmapped buckets are then downloaded from it.
        cache_dir: where downloaded objects are kept (default ``~/.cache/customlabels/s3``).
        s3_options: extra keyword arguments for :class:`customlabels.storage.S3Store` (e.g. a
            ``client``).
    """

    base_dir: Path
    bucket_map: Mapping[str, Path] = field(default_factory=dict)
    s3_endpoint_url: str | None = None
    cache_dir: Path | None = None
    s3_options: dict[str, Any] = field(default_factory=dict)
    _stores: dict[str, Any] = field(default_factory=dict, repr=False)

    def resolve(self, ref: str) -> Path:
        """Return the local path of ``ref`` (downloading it first for an S3 endpoint).

        Raises:
            RefError: not ``s3://bucket/key`` nor a relative path.
            UnsafePathError: the key escapes its root.
            InvalidS3ObjectError: the object could not be fetched from the endpoint.
        """
        if "://" not in ref:
            if not ref.strip():
                raise RefError("expected s3://BUCKET/KEY or a relative path, got an empty string")
            return safe_join(self.base_dir, ref)
        if not is_s3_uri(ref):
            raise RefError(f"expected s3://BUCKET/KEY or a relative path, got {ref!r}")
        bucket, key = parse_s3_uri(ref)
        if bucket in self.bucket_map:
            return safe_join(self.bucket_map[bucket], key)
        if self.s3_endpoint_url or self.s3_options.get("client") is not None:
            return self._fetch(bucket, key)
        return safe_join(self.base_dir, key)

    def _fetch(self, bucket: str, key: str) -> Path:
        # the key is checked before any request is made
        target = safe_join((self.cache_dir or _default_cache()) / bucket, key)
        if target.is_file():
            return target
        store = self._stores.get(bucket)
        if store is None:
            from customlabels.storage.s3 import S3Store

            store = S3Store(bucket, endpoint_url=self.s3_endpoint_url, **self.s3_options)
            self._stores[bucket] = store
        data = store.get(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target
