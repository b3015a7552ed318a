"""io.paths.safe_join: references never leave their root."""

from __future__ import annotations

from pathlib import Path

import pytest

from customlabels.errors import UnsafePathError
from customlabels.io.paths import safe_join


@pytest.mark.parametrize(
    "key",
    [
        "../x.jpg",
        "a/../../x.jpg",
        "/etc/passwd",
        "\\\\server\\share",
        "C:\\x.jpg",
        "a\x00b",
        "a\\..\\..\\x",
    ],
)
def test_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, key)


@pytest.mark.parametrize("key", ["a.jpg", "images/a.jpg", "images/./a.jpg", "a..b.jpg"])
def test_accepted(tmp_path: Path, key: str) -> None:
    path = safe_join(tmp_path, key)
    assert tmp_path.resolve() in path.resolve().parents


def test_symlinks_out_are_refused_and_in_are_fine(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "out").symlink_to(tmp_path / "outside")
    (root / "in").symlink_to(root / "real")
    with pytest.raises(UnsafePathError, match="outside"):
        safe_join(root, "out/x.jpg")
    assert safe_join(root, "in/x.jpg").name == "x.jpg"
