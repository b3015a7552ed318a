"""Buckets the service reads and writes: subfolders of ``--buckets DIR`` or an S3-compatible store.

``S3Object {Bucket, Name}`` in CreateDataset, DetectCustomLabels and ``OutputConfig`` resolve
here. With ``--buckets DIR`` the bucket ``b`` is the folder ``DIR/b`` and keys never leave it
(:func:`customlabels.io.paths.safe_join`); with ``--s3-endpoint-url`` each bucket is an
:class:`~customlabels.storage.S3Store` on that endpoint.
"""

from __future__ import annotations

import re
from pathlib import Path

from customlabels.errors import (
    InvalidParameterError,
    InvalidS3ObjectError,
    StoreAccessError,
    StoreUnavailableError,
)
from customlabels.io.paths import safe_join
from customlabels.storage import LocalStore, ObjectStore, S3Store
from customlabels.storage.s3 import classify_s3_error

__all__ = ["Buckets", "parse_s3_uri"]

_BUCKET_RE = re.compile(r"^[0-9A-Za-z.\-_]{3,255}$")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; InvalidParameterError otherwise."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InvalidParameterError(f"expected s3://BUCKET/KEY, got {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


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
                raise InvalidS3ObjectError(f"s3://{bucket}/{key}: no such object")
            if max_bytes is not None and info.size > max_bytes:
                from customlabels.errors import ImageTooLargeError

                raise ImageTooLargeError(
                    f"s3://{bucket}/{key}: {info.size} bytes, over the limit of {max_bytes}"
                )
            return store.get(key)
        except StoreAccessError as exc:  # what Rekognition answers for an object it may not read
            raise InvalidS3ObjectError(exc.message) from None

    def local_path(self, bucket: str, key: str) -> Path | None:
        """The file behind ``s3://bucket/key`` when buckets are local folders, else None."""
        if self.s3_endpoint_url is not None or self.buckets_dir is None:
            return None
        return safe_join(safe_join(self.buckets_dir, bucket), key)
