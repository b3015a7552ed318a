"""A local folder served as a bucket: ``ROOT/<key>``.

Read failures are sorted as :mod:`customlabels.storage.s3` sorts them: a missing file (or a
folder where a file should be) is the object's fault (:class:`InvalidS3ObjectError`); a refused
permission is :class:`StoreAccessError`; any other ``OSError`` (EIO, a stale NFS handle, a
timeout of a network mount) is :class:`StoreUnavailableError`, transient.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from customlabels.errors import (
    CustomLabelsError,
    InvalidS3ObjectError,
    StoreAccessError,
    StoreUnavailableError,
)
from customlabels.io.paths import safe_join
from customlabels.storage.base import ObjectInfo, register_store

__all__ = ["LocalStore"]


class LocalStore:
    """Objects are files under ``root``; keys never escape it (see :func:`safe_join`)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.name = self.root.name

    def path(self, key: str) -> Path:
        return safe_join(self.root, key)

    def get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise _classify_os_error(exc, self.url(key)) from None

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # temporary name in the same folder, then rename: readers never see half a file
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def head(self, key: str, with_etag: bool = False) -> ObjectInfo | None:
        path = self.path(key)
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                return None
            etag = (
                hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
                if with_etag
                else None
            )
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _classify_os_error(exc, self.url(key)) from None
        return ObjectInfo(key=key, size=st.st_size, last_modified=st.st_mtime, etag=etag)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, as S3 lists them (temporary files skipped)."""
        root = self.root.resolve()
        keys: list[tuple[str, Path]] = []
        for dirpath, _dirnames, filenames in os.walk(root):
            for fname in filenames:
                full = Path(dirpath, fname)
                key = full.relative_to(root).as_posix()
                if key.startswith(prefix) and not fname.startswith(".tmp-"):
                    keys.append((key, full))
        for key, full in sorted(keys):
            try:
                st = full.stat()
            except OSError:
                continue  # removed while listing
            yield ObjectInfo(key=key, size=st.st_size, last_modified=st.st_mtime)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return f"file://{self.root.resolve() / key}"


def _classify_os_error(exc: OSError, what: str) -> CustomLabelsError:
    message = f"{what}: cannot read ({exc.strerror or exc})"
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return InvalidS3ObjectError(message)
    if isinstance(exc, PermissionError):
        return StoreAccessError(message)
    return StoreUnavailableError(message)


def _open_local(rest: str, **_: Any) -> LocalStore:
    return LocalStore(Path(rest))


register_store("file", _open_local)
