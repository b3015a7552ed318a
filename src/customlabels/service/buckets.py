"""Buckets the service reads and writes: subfolders of ``--buckets DIR`` or an S3-compatible store.

``S3Object {Bucket, Name}`` in CreateDataset, DetectCustomLabels and ``OutputConfig`` resolve
here. With ``--buckets DIR`` the bucket ``b`` is the folder ``DIR/b`` and keys never leave it
(:func:`customlabels.io.paths.safe_join`); with ``--s3-endpoint-url`` each bucket is an
:class:`~customlabels.storage.S3Store` on that endpoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from customlabels.core.uris import format_s3_uri
from customlabels.errors import (
    ImageTooLargeError,
    InvalidParameterError,
    InvalidS3ObjectError,
    StoreAccessError,
    StoreUnavailableError,
)
from customlabels.io.paths import safe_join
from customlabels.storage import LocalStore, ObjectStore, S3Store
from customlabels.storage.s3 import classify_s3_error

__all__ = ["Buckets", "s3_object"]

_BUCKET_RE = re.compile(r"^[0-9A-Za-z.\-_]{3,255}$")


def s3_object(value: Any, field: str) -> tuple[str, str]:
    """``(Bucket, Name)`` of a request's ``S3Object``.

    ``Version`` is refused: buckets here (folders, or a store addressed without versions) hold
    one version of each object, so honouring it is not possible and ignoring it would read
    another version than the one asked for.

    Raises:
        InvalidParameterError: not ``{Bucket, Name}``, or ``Version`` given (names ``field``).
    """
    s3 = value if isinstance(value, dict) else {}
    bucket, key = s3.get("Bucket"), s3.get("Name")
    if not bucket or not key:
        raise InvalidParameterError(f"{field}: expected {{Bucket, Name}}, got {json.dumps(value)}")
    if s3.get("Version") is not None:
        raise InvalidParameterError(
            f"{field}.Version: object versions are not supported here; got {s3['Version']!r}"
        )
    return str(bucket), str(key)


class Buckets:
    """Resolve bucket names to object stores.

    Args:
        buckets_dir: folder whose subfolders are buckets.
        s3_endpoint_url: S3-compatible endpoint used instead (takes precedence).
    """

    def __init__(self, buckets_dir: Path | None = None, s3_endpoint_url: str | None = None) -> None:
        self.buckets_dir = buckets_dir
        self.s3_endpoint_url = s3_endpoint_url
        self._s3: dict[str, S3Store] = {}

    @property
    def configured(self) -> bool:
        return self.buckets_dir is not None or self.s3_endpoint_url is not None

    def store(self, bucket: str) -> ObjectStore:
        """The store of ``bucket``.

        Raises:
            InvalidParameterError: a malformed bucket name.
            InvalidS3ObjectError: no bucket of that name (or no buckets configured).
            StoreUnavailableError: the S3 endpoint does not answer (transient).
        """
        if not isinstance(bucket, str) or not _BUCKET_RE.match(bucket):
            raise InvalidParameterError(
                f"S3Object.Bucket: expected 3–255 characters of [0-9A-Za-z.-_], got {bucket!r}"
            )
        if self.s3_endpoint_url is not None:
            if bucket not in self._s3:
                store = S3Store(bucket, endpoint_url=self.s3_endpoint_url)
                try:
                    store.client.head_bucket(Bucket=bucket)
                except Exception as exc:  # botocore's ClientError / connection errors
                    error = classify_s3_error(exc, f"bucket {bucket!r}")
                    if isinstance(error, StoreUnavailableError):
                        raise error from None  # an outage stays an outage (500, retried)
                    raise InvalidS3ObjectError(
                        f"bucket {bucket!r}: not found in {self.s3_endpoint_url} ({exc})"
                    ) from None
                self._s3[bucket] = store  # only buckets that exist are remembered
            return self._s3[bucket]
        if self.buckets_dir is None:
            raise InvalidS3ObjectError(
                f"bucket {bucket!r}: this server serves no buckets (start it with --buckets DIR "
                "or --s3-endpoint-url URL)"
            )
        root = safe_join(self.buckets_dir, bucket)
        if not root.is_dir():
            raise InvalidS3ObjectError(f"bucket {bucket!r}: no such bucket (no folder {root})")
        return LocalStore(root)

    def get(self, bucket: str, key: str, max_bytes: int | None = None) -> bytes:
        """Read ``s3://bucket/key``; refuse objects over ``max_bytes`` before reading them.

        Raises:
            InvalidS3ObjectError: no such object, or one the store refuses to serve.
            StoreUnavailableError: the store does not answer (transient: the API answers 500).
        """
        store = self.store(bucket)
        if not key:
            raise InvalidParameterError("S3Object.Name: expected a key, got ''")
        try:
            info = store.head(key)
            if info is None:
                raise InvalidS3ObjectError(f"{format_s3_uri(bucket, key)}: no such object")
            if max_bytes is not None and info.size > max_bytes:
                where = format_s3_uri(bucket, key)
                raise ImageTooLargeError(
                    f"{where}: {info.size} bytes, over the limit of {max_bytes}"
                )
            return store.get(key)
        except StoreAccessError as exc:  # what Rekognition answers for an object it may not read
            raise InvalidS3ObjectError(exc.message) from None

    def local_path(self, bucket: str, key: str) -> Path | None:
        """The file behind ``s3://bucket/key`` when buckets are local folders, else None."""
        if self.s3_endpoint_url is not None or self.buckets_dir is None:
            return None
        return safe_join(safe_join(self.buckets_dir, bucket), key)
