"""Any S3-compatible store (AWS S3, SeaweedFS, MinIO) through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from customlabels.core.uris import S3_SCHEME, format_s3_uri, parse_s3_uri
from customlabels.errors import InvalidParameterError, InvalidS3ObjectError
from customlabels.storage.base import ObjectInfo, register_store

__all__ = ["S3Store"]


class S3Store:
    """A bucket in an S3-compatible store.

    Args:
        bucket: bucket name.
        client: a boto3 S3 client; made from ``endpoint_url`` and the usual AWS environment when
            omitted.
        sse: server-side encryption for writes, e.g.
            ``{"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "..."}``, passed to PutObject.
    """

    def __init__(
        self,
        bucket: str,
        client: Any = None,
        endpoint_url: str | None = None,
        sse: dict[str, str] | None = None,
    ) -> None:
        if client is None:
            import boto3.session  # a base dependency; imported late to keep CLI start fast
            from botocore.config import Config

            # A session of its own: boto3's default session caches the first credentials it
            # resolves for the life of the process, so a store opened later with other
            # credentials in the environment would sign with stale ones.
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
            )
        self.client = client
        self.bucket = bucket
        self.name = bucket
        self.sse = dict(sse or {})

    def get(self, key: str) -> bytes:
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise InvalidS3ObjectError(f"{self.url(key)}: cannot read ({exc})") from None
        return body

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        # a single PutObject is atomic in S3: readers see the old object or the new one
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **self.sse
        )

    def head(self, key: str, with_etag: bool = False) -> ObjectInfo | None:
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError:
            return None
        return ObjectInfo(
            key=key,
            size=int(meta["ContentLength"]),
            last_modified=meta["LastModified"].timestamp(),
            etag=str(meta.get("ETag", "")).strip('"') or None,
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield ObjectInfo(
                    key=obj["Key"],
                    size=int(obj["Size"]),
                    last_modified=obj["LastModified"].timestamp(),
                    etag=str(obj.get("ETag", "")).strip('"') or None,
                )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def url(self, key: str) -> str:
        return format_s3_uri(self.bucket, key)


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
