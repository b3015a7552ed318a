"""The object-store port and its factory.

Keys are ``/``-separated strings as in S3. ``etag`` identifies content: S3's ETag, or for a
local file a hash of its bytes computed on demand (``head(key, with_etag=True)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from customlabels.errors import InvalidParameterError

__all__ = ["ObjectInfo", "ObjectStore", "open_store", "register_store"]


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: float
    etag: str | None = None


class ObjectStore(Protocol):
    """What the pipeline and the service need from a bucket."""

    name: str

    def get(self, key: str) -> bytes: ...

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        """Write ``data`` at ``key`` atomically: readers see the old object or the new one."""

    def head(self, key: str, with_etag: bool = False) -> ObjectInfo | None: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str: ...


_FACTORIES: dict[str, Callable[..., ObjectStore]] = {}


def register_store(scheme: str, factory: Callable[..., ObjectStore]) -> None:
    _FACTORIES[scheme] = factory


def open_store(url: str, **options: Any) -> ObjectStore:
    """Open ``s3://bucket`` (with ``endpoint_url=`` etc. in ``options``) or a local folder.

    A plain path or ``file://`` URL is a local folder used as a bucket.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "file", url
    try:
        factory = _FACTORIES[scheme]
    except KeyError:
        raise InvalidParameterError(
            f"store {url!r}: expected s3://BUCKET or a folder, got scheme {scheme!r}"
        ) from None
    return factory(rest, **options)
