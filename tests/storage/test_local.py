"""LocalStore: a folder as a bucket, atomic writes, no escape from the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from customlabels.errors import InvalidS3ObjectError, UnsafePathError
from customlabels.storage import LocalStore, open_store


def test_put_get_head_list_delete(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/b c/é.json", b'{"x": 1}')
    assert store.get("a/b c/é.json") == b'{"x": 1}'
    info = store.head("a/b c/é.json", with_etag=True)
    assert info is not None and info.size == 8 and info.etag is not None
    store.put("z.txt", b"z")
    assert [o.key for o in store.list()] == ["a/b c/é.json", "z.txt"]
    assert [o.key for o in store.list("a/")] == ["a/b c/é.json"]
    store.delete("z.txt")
    assert store.head("z.txt") is None


def test_put_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for i in range(3):
        store.put("r.json", str(i).encode())
    assert sorted(os.listdir(tmp_path)) == ["r.json"]
    assert store.get("r.json") == b"2"


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a/\x00b"])
def test_keys_escaping_the_root_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "bucket")
    with pytest.raises(UnsafePathError):
        store.get(key)
    with pytest.raises(UnsafePathError):
        store.put(key, b"no")


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    root = tmp_path / "bucket"
    root.mkdir()
    (root / "link.txt").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside"):
        LocalStore(root).get("link.txt")


def test_missing_object_is_an_s3_object_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidS3ObjectError, match="cannot read"):
        LocalStore(tmp_path).get("nope.jpg")


def test_open_store_registry(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    with pytest.raises(Exception, match="expected s3://BUCKET or a folder"):
        open_store("ftp://host/x")
