"""Resolving ``source-ref`` values to local files, never outside their root.

A manifest points at its images with ``s3://bucket/key``. Resolution, in order:

1. ``bucket`` in ``bucket_map`` → ``bucket_map[bucket] / key``;
2. a ``fetch`` given → the object is fetched once with it into ``cache_dir / bucket / key``;
3. otherwise → ``key`` under the manifest's own folder (the layout a labelling job's output
   has once downloaded: ``output.manifest`` beside ``images/``).

A plain relative path (no scheme) is taken under the manifest's folder. Keys go through
:func:`customlabels.io.paths.safe_join`: ``..``, absolute paths and symlinks out of the root are
refused with :class:`~customlabels.errors.UnsafePathError` before anything is read.

Formats know nothing of stores: the layers that do (the CLI, services) hand a :data:`Fetch` down,
e.g. :class:`customlabels.storage.s3.S3Fetch` for ``--s3-endpoint-url``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from customlabels.core.uris import is_s3_uri, parse_s3_uri, s3_bucket_of
from customlabels.errors import InvalidParameterError
from customlabels.io.paths import safe_join

__all__ = ["Fetch", "RefError", "RefResolver", "parse_bucket_map"]

Fetch = Callable[[str, str], bytes]
"""``(bucket, key)`` → the object's bytes, from wherever the bucket is stored.

What it raises decides what happens to the manifest line (see
:func:`customlabels.formats.groundtruth.check_refs`):
:class:`~customlabels.errors.InvalidS3ObjectError` (no such object) or any other
``CustomLabelsError`` except the next one makes the line invalid (``ERROR_INVALID_IMAGE``);
:class:`~customlabels.errors.StoreUnavailableError` (the store did not answer) stops the whole
import so that it can be retried, since an outage is not the image's fault.
"""


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
        fetch: reads objects of unmapped buckets (see :data:`Fetch`); without it they resolve
            under ``base_dir``.
        cache_dir: where fetched objects are kept (default ``~/.cache/customlabels/s3``).
    """

    base_dir: Path
    bucket_map: Mapping[str, Path] = field(default_factory=dict)
    fetch: Fetch | None = None
    cache_dir: Path | None = None

    def resolve(self, ref: str) -> Path:
        """Return the local path of ``ref`` (fetching it first when a ``fetch`` is given).

        Raises:
            RefError: not ``s3://bucket/key`` nor a relative path.
            UnsafePathError: the key escapes its root.
            InvalidS3ObjectError, StoreUnavailableError, ...: whatever ``fetch`` raised.
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
        if self.fetch is not None:
            return self._cached(self.fetch, bucket, key)
        return safe_join(self.base_dir, key)

    def _cached(self, fetch: Fetch, bucket: str, key: str) -> Path:
        # the key is checked before any request is made
        target = safe_join((self.cache_dir or _default_cache()) / bucket, key)
        if target.is_file():
            return target
        data = fetch(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target
