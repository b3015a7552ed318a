"""Any S3-compatible store (AWS S3, SeaweedFS, MinIO) through boto3.

Every failure of a request is sorted here, once, into what the rest of the system acts on:

- the object is missing (404 ``NoSuchKey``, ``NoSuchBucket``): :class:`InvalidS3ObjectError`,
  the image's own fault;
- the store could not answer (connection refused or reset, timeouts, HTTP 5xx, 429 and the
  throttling codes): :class:`StoreUnavailableError`, transient, retried by the caller;
- the store refused the request (403, bad credentials, a KMS key it cannot use, any other
  4xx): :class:`StoreAccessError`, neither the image's fault nor transient.

Short blips are retried inside botocore first (standard retry mode: exponential backoff with
jitter, 5 attempts); what is still failing after that reaches the caller classified.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from customlabels.core.uris import S3_SCHEME, format_s3_uri, parse_s3_uri
from customlabels.errors import (
    CustomLabelsError,
    InvalidParameterError,
    InvalidS3ObjectError,
    StoreAccessError,
    StoreUnavailableError,
)
from customlabels.storage.base import ObjectInfo, register_store

__all__ = ["S3Fetch", "S3Store", "classify_s3_error", "sse_params"]

_MISSING = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
# botocore's own list of throttling codes (botocore.retries.standard) plus S3's
_TRANSIENT = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "InternalError",
    }
)


SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")


def sse_params(sse: str | None, kms_key_id: str | None = None) -> dict[str, str]:
    """PutObject's encryption parameters from ``--sse`` / ``--sse-kms-key-id`` (or environment).

    Raises:
        InvalidParameterError: an unknown algorithm, or a key id without ``aws:kms``.
    """
    out: dict[str, str] = {}
    if sse:
        if sse not in SSE_ALGORITHMS:
            raise InvalidParameterError(f"--sse: expected one of {SSE_ALGORITHMS}, got {sse!r}")
        out["ServerSideEncryption"] = sse
    if kms_key_id:
        if not sse or not sse.startswith("aws:kms"):
            raise InvalidParameterError("--sse-kms-key-id: needs --sse aws:kms")
        out["SSEKMSKeyId"] = kms_key_id
    return out


def classify_s3_error(exc: Exception, what: str) -> CustomLabelsError:
    """The error of this tree that ``exc`` (raised by a boto3 S3 call) stands for.

    Args:
        exc: a botocore ``ClientError``, a botocore connection / timeout error, or anything
            else a client raised (taken as an outage: the request did not get an answer).
        what: the object or bucket named in the message, e.g. ``s3://bucket/key``.
    """
    from botocore.exceptions import ClientError

    if isinstance(exc, CustomLabelsError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = f"{what}: {code or status} ({error.get('Message') or exc})"
        if code in _MISSING or status == 404:
            return InvalidS3ObjectError(f"{what}: no such object ({code or status})")
        if code in _TRANSIENT or status >= 500 or status == 429:
            return StoreUnavailableError(message)
        return StoreAccessError(message)
    # EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, urllib3 errors, ...
    return StoreUnavailableError(f"{what}: store unreachable ({type(exc).__name__}: {exc})")


def _new_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client with the retry policy the module docstring states."""
    import boto3.session  # a base dependency; imported late to keep CLI start fast
    from botocore.config import Config

    # A session of its own: boto3's default session caches the first credentials it resolves
    # for the life of the process, so a store opened later with other credentials in the
    # environment would sign with stale ones.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


class S3Store:
    """A bucket in an S3-compatible store.

    Args:
        bucket: bucket name.
        client: a boto3 S3 client; made from ``endpoint_url`` and the usual AWS configuration
            (environment, ``AWS_ENDPOINT_URL_S3``, profiles) when omitted.
        sse: server-side encryption for writes, e.g.
            ``{"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "..."}``, passed to PutObject.
            A store that answers a write without applying it gets the object deleted again and
            a :class:`StoreAccessError`: results are never left unencrypted silently.
    """

    def __init__(
        self,
        bucket: str,
        client: Any = None,
        endpoint_url: str | None = None,
        sse: dict[str, str] | None = None,
    ) -> None:
        self.client = client if client is not None else _new_client(endpoint_url)
        self.bucket = bucket
        self.name = bucket
        self.sse = dict(sse or {})

    def _call(self, what: str, operation: str, **params: Any) -> Any:
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except Exception as exc:
            raise classify_s3_error(exc, what) from None

    def get(self, key: str) -> bytes:
        """The object's bytes.

        Raises:
            InvalidS3ObjectError: no such object. StoreUnavailableError, StoreAccessError: see
                the module.
        """
        what = self.url(key)
        response = self._call(what, "get_object", Key=key)
        try:
            body: bytes = response["Body"].read()
        except Exception as exc:  # the connection dropped mid-body
            raise classify_s3_error(exc, what) from None
        return body

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        # a single PutObject is atomic in S3: readers see the old object or the new one
        what = self.url(key)
        response = self._call(
            what, "put_object", Key=key, Body=data, ContentType=content_type, **self.sse
        )
        wanted = self.sse.get("ServerSideEncryption")
        if wanted and response.get("ServerSideEncryption") != wanted:
            self._call(what, "delete_object", Key=key)
            raise StoreAccessError(
                f"{what}: asked for ServerSideEncryption={wanted}, the store answered "
                f"{response.get('ServerSideEncryption')!r}; the unencrypted object was deleted"
            )

    def head(self, key: str, with_etag: bool = False) -> ObjectInfo | None:
        """The object's size, time and ETag; None when there is no such object."""
        try:
            meta = self._call(self.url(key), "head_object", Key=key)
        except InvalidS3ObjectError:
            return None
        return ObjectInfo(
            key=key,
            size=int(meta["ContentLength"]),
            last_modified=meta["LastModified"].timestamp(),
            etag=str(meta.get("ETag", "")).strip('"') or None,
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix)
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=obj["Key"],
                        size=int(obj["Size"]),
                        last_modified=obj["LastModified"].timestamp(),
                        etag=str(obj.get("ETag", "")).strip('"') or None,
                    )
        except Exception as exc:
            raise classify_s3_error(exc, self.url(prefix)) from None

    def delete(self, key: str) -> None:
        self._call(self.url(key), "delete_object", Key=key)

    def url(self, key: str) -> str:
        return format_s3_uri(self.bucket, key)


class S3Fetch:
    """``(bucket, key)`` → bytes from an S3-compatible store, for any bucket.

    The :data:`customlabels.formats.refs.Fetch` that the CLI hands down for
    ``--s3-endpoint-url``, so formats read ``s3://`` refs without knowing about storage. Each
    read is :meth:`S3Store.get`: the same retries and the same sorting of failures (a missing
    object is :class:`InvalidS3ObjectError`, an outage :class:`StoreUnavailableError`).

    Args:
        endpoint_url: the store; None uses the usual AWS configuration.
        client: a boto3 S3 client to use instead (made on the first read when omitted, then
            shared by every bucket).
    """

    def __init__(self, endpoint_url: str | None = None, client: Any = None) -> None:
        self.endpoint_url = endpoint_url
        self.client = client
        self._stores: dict[str, S3Store] = {}

    def __call__(self, bucket: str, key: str) -> bytes:
        store = self._stores.get(bucket)
        if store is None:
            if self.client is None:
                self.client = _new_client(self.endpoint_url)
            store = self._stores[bucket] = S3Store(bucket, client=self.client)
        return store.get(key)


def _open_s3(rest: str, **options: Any) -> S3Store:
    url = S3_SCHEME + rest
    bucket, prefix = parse_s3_uri(url, key_required=False, what="store")
    if prefix.strip("/"):
        # a store is a whole bucket; keys are filtered by the caller's own prefix option
        raise InvalidParameterError(
            f"store: expected s3://BUCKET without a prefix, got {url!r} (give the prefix with "
            "--prefix)"
        )
    return S3Store(bucket, **options)


register_store("s3", _open_s3)
