"""source-ref resolution: bucket map, manifest folder, S3-compatible endpoint (fake client)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from customlabels.errors import InvalidParameterError, UnsafePathError
from customlabels.formats import ValidationReport
from customlabels.formats.groundtruth import load_ground_truth
from customlabels.formats.refs import RefError, RefResolver, parse_bucket_map, split_s3_uri


class FakeS3:
    """The one call S3Store.get makes, with a record of what was asked."""

    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append((Bucket, Key))
        if (Bucket, Key) not in self.objects:
            raise KeyError("NoSuchKey")
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}


@pytest.mark.parametrize(
    ("uri", "parts"),
    [("s3://b/k.jpg", ("b", "k.jpg")), ("s3://b/a/b/c.png", ("b", "a/b/c.png"))],
)
def test_split_s3_uri(uri: str, parts: tuple[str, str]) -> None:
    assert split_s3_uri(uri) == parts


@pytest.mark.parametrize("uri", ["s3://", "s3://b", "s3://b/", "s3:///k", "gs://b/k", "b/k"])
def test_split_s3_uri_refuses(uri: str) -> None:
    with pytest.raises(RefError, match="expected s3://"):
        split_s3_uri(uri)


def test_parse_bucket_map() -> None:
    assert parse_bucket_map(["a=/x", "s3://b/=y"]) == {"a": Path("/x"), "b": Path("y")}
    with pytest.raises(InvalidParameterError, match="BUCKET=DIR"):
        parse_bucket_map(["nobucket"])


def test_endpoint_downloads_once_into_the_cache(tmp_path: Path) -> None:
    jpeg = b"\xff\xd8\xff fake jpeg"
    fake = FakeS3({("remote", "images/a.jpg"): jpeg})
    line = {
        "source-ref": "s3://remote/images/a.jpg",
        "c": 0,
        "c-metadata": {"class-name": "cat", "type": "groundtruth/image-classification"},
    }
    missing = {**line, "source-ref": "s3://remote/images/missing.jpg"}
    escaping = {**line, "source-ref": "s3://remote/../../x.jpg"}
    manifest = tmp_path / "m.manifest"
    manifest.write_text("\n".join(json.dumps(x) for x in (line, missing, escaping)) + "\n")
    report = ValidationReport()
    ds = load_ground_truth(
        manifest, cache_dir=tmp_path / "cache", s3_options={"client": fake}, report=report
    )
    assert [im.path for im in ds] == [tmp_path / "cache" / "remote" / "images" / "a.jpg"]
    assert ds.images[0].path is not None and ds.images[0].path.read_bytes() == jpeg
    assert report.codes() == {"ERROR_INVALID_IMAGE": 1, "ERROR_INVALID_SOURCE_REF_FORMAT": 1}
    assert ("remote", "../../x.jpg") not in fake.calls  # refused before any request
    load_ground_truth(manifest, cache_dir=tmp_path / "cache", s3_options={"client": fake})
    assert fake.calls.count(("remote", "images/a.jpg")) == 1  # cached


def test_relative_refs_and_mapped_buckets(tmp_path: Path) -> None:
    resolver = RefResolver(base_dir=tmp_path, bucket_map={"b": tmp_path / "b"})
    assert resolver.resolve("images/x.jpg") == tmp_path / "images" / "x.jpg"
    assert resolver.resolve("s3://b/x.jpg") == tmp_path / "b" / "x.jpg"
    assert resolver.resolve("s3://other/x.jpg") == tmp_path / "x.jpg"
    with pytest.raises(UnsafePathError):
        resolver.resolve("s3://b/../x.jpg")
    with pytest.raises(RefError):
        resolver.resolve("   ")
