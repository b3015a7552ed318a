"""The one ``s3://`` parser: what it accepts, what it refuses, and that nothing slices by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from customlabels.core.uris import format_s3_uri, parse_s3_uri, s3_bucket_of, s3_key_of
from customlabels.errors import InvalidParameterError

SRC = Path(__file__).resolve().parents[2] / "src" / "customlabels"


@pytest.mark.parametrize(
    ("uri", "parts"),
    [("s3://b/k.jpg", ("b", "k.jpg")), ("s3://b/a/b/c.png", ("b", "a/b/c.png"))],
)
def test_parse_s3_uri(uri: str, parts: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == parts
    assert format_s3_uri(*parts) == uri


@pytest.mark.parametrize("uri", ["s3://", "s3://b", "s3://b/", "s3:///k", "gs://b/k", "b/k", 3])
def test_parse_s3_uri_refuses(uri: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"--x: expected s3://BUCKET/KEY"):
        parse_s3_uri(uri, what="--x")


@pytest.mark.parametrize(
    ("uri", "parts"),
    [("s3://b", ("b", "")), ("s3://b/", ("b", "")), ("s3://b/runs/v1/", ("b", "runs/v1/"))],
)
def test_bucket_and_prefix(uri: str, parts: tuple[str, str]) -> None:
    assert parse_s3_uri(uri, key_required=False) == parts


@pytest.mark.parametrize(
    ("ref", "bucket", "key"),
    [("s3://b/images/x.jpg", "b", "images/x.jpg"), ("images/x.jpg", None, "images/x.jpg")],
)
def test_bucket_and_key_of_a_ref(ref: str, bucket: str | None, key: str) -> None:
    assert s3_bucket_of(ref) == bucket
    assert s3_key_of(ref) == key


def test_no_hand_slicing_of_s3_uris_in_the_package() -> None:
    """``[5:]`` after ``s3://``, ``removeprefix("s3://")`` and ``startswith("s3://")`` live only
    in :mod:`customlabels.core.uris`."""
    pattern = re.compile(r"""\[5:\]|removeprefix\(\s*["']s3://|startswith\(\s*["']s3://""")
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "uris.py"
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []
