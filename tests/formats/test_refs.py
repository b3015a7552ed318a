"""source-ref resolution: bucket map, manifest folder, a fetch handed in (S3: fake, refused and
real SeaweedFS clients)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from customlabels.errors import (
    CustomLabelsError,
    InvalidParameterError,
    InvalidS3ObjectError,
    StoreAccessError,
    StoreUnavailableError,
    UnsafePathError,
)
from customlabels.formats import ValidationReport
from customlabels.formats.groundtruth import load_ground_truth
from customlabels.formats.refs import RefError, RefResolver, parse_bucket_map
from customlabels.storage import S3Fetch

LINE = {
    "source-ref": "s3://remote/images/a.jpg",
    "c": 0,
    "c-metadata": {"class-name": "cat", "type": "groundtruth/image-classification"},
}


class FakeS3:
    """The one call S3Store.get makes, with a record of what was asked."""

    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append((Bucket, Key))
        if (Bucket, Key) not in self.objects:
            raise ClientError(  # what S3 answers for a missing object
                {"Error": {"Code": "NoSuchKey"}, "ResponseMetadata": {"HTTPStatusCode": 404}},
                "GetObject",
            )
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}


def test_parse_bucket_map() -> None:
    assert parse_bucket_map(["a=/x", "s3://b/=y"]) == {"a": Path("/x"), "b": Path("y")}
    with pytest.raises(InvalidParameterError, match="BUCKET=DIR"):
        parse_bucket_map(["nobucket"])


def test_an_s3_fetch_downloads_once_into_the_cache(tmp_path: Path) -> None:
    jpeg = b"\xff\xd8\xff fake jpeg"
    fake = FakeS3({("remote", "images/a.jpg"): jpeg})
    missing = {**LINE, "source-ref": "s3://remote/images/missing.jpg"}
    escaping = {**LINE, "source-ref": "s3://remote/../../x.jpg"}
    manifest = tmp_path / "m.manifest"
    manifest.write_text("\n".join(json.dumps(x) for x in (LINE, missing, escaping)) + "\n")
    report = ValidationReport()
    fetch = S3Fetch(client=fake)
    ds = load_ground_truth(manifest, fetch=fetch, cache_dir=tmp_path / "cache", report=report)
    assert [im.path for im in ds] == [tmp_path / "cache" / "remote" / "images" / "a.jpg"]
    assert ds.images[0].path is not None and ds.images[0].path.read_bytes() == jpeg
    assert report.codes() == {"ERROR_INVALID_IMAGE": 1, "ERROR_INVALID_SOURCE_REF_FORMAT": 1}
    assert ("remote", "../../x.jpg") not in fake.calls  # refused before any request
    load_ground_truth(manifest, fetch=S3Fetch(client=fake), cache_dir=tmp_path / "cache")
    assert fake.calls.count(("remote", "images/a.jpg")) == 1  # cached


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidS3ObjectError("s3://remote/images/a.jpg: no such object (NoSuchKey)"), "NoSuchKey"),
        (StoreAccessError("s3://remote/images/a.jpg: AccessDenied (m)"), "AccessDenied"),
    ],
)
def test_what_a_fetch_cannot_serve_invalidates_its_line_only(
    tmp_path: Path, error: CustomLabelsError, code: str
) -> None:
    """Any (bucket, key) -> bytes callable will do; what it raises decides the line's fate."""
    asked: list[tuple[str, str]] = []

    def fetch(bucket: str, key: str) -> bytes:
        asked.append((bucket, key))
        if key == "images/a.jpg":
            raise error
        return b"\xff\xd8\xff"

    good = {**LINE, "source-ref": "s3://remote/images/b.jpg"}
    manifest = tmp_path / "m.manifest"
    manifest.write_text(f"{json.dumps(LINE)}\n{json.dumps(good)}\n")
    report = ValidationReport()
    ds = load_ground_truth(manifest, fetch=fetch, cache_dir=tmp_path / "cache", report=report)
    assert [im.ref for im in ds] == ["s3://remote/images/b.jpg"]
    assert report.codes() == {"ERROR_INVALID_IMAGE": 1}
    assert code in report.errors[0].message and report.errors[0].line == 1
    assert asked == [("remote", "images/a.jpg"), ("remote", "images/b.jpg")]


def test_relative_refs_and_mapped_buckets(tmp_path: Path) -> None:
    resolver = RefResolver(base_dir=tmp_path, bucket_map={"b": tmp_path / "b"})  # no fetch
    assert resolver.resolve("images/x.jpg") == tmp_path / "images" / "x.jpg"
    assert resolver.resolve("s3://b/x.jpg") == tmp_path / "b" / "x.jpg"
    assert resolver.resolve("s3://other/x.jpg") == tmp_path / "x.jpg"
    with pytest.raises(UnsafePathError):
        resolver.resolve("s3://b/../x.jpg")
    with pytest.raises(RefError):
        resolver.resolve("   ")


@pytest.mark.slow
def test_against_a_real_s3_compatible_store(
    bees_manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validate a manifest whose images live only in SeaweedFS (``weed mini``), via boto3: with
    ``dataset validate --s3-endpoint-url``, then with ``validate_manifest(fetch=S3Fetch(...))``."""
    local_servers = pytest.importorskip("customlabels.pipeline.local_servers")
    import boto3
    from botocore.config import Config
    from typer.testing import CliRunner

    from customlabels.cli.main import app
    from customlabels.datasets.validate import validate_manifest

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lines = bees_manifest.read_text().splitlines()[:6]
    with local_servers.seaweedfs_server() as server:
        for key, value in server.env().items():  # the gateway's credentials, for boto3
            monkeypatch.setenv(key, value)
        s3 = boto3.client(
            "s3", endpoint_url=server.endpoint, config=Config(s3={"addressing_style": "path"})
        )
        s3.create_bucket(Bucket="bee-detection-demo")
        for line in lines:
            key = json.loads(line)["source-ref"].split("/", 3)[3]
            s3.put_object(
                Bucket="bee-detection-demo", Key=key, Body=(bees_manifest.parent / key).read_bytes()
            )
        manifest = tmp_path / "remote.manifest"  # no images beside it
        manifest.write_text("\n".join(lines) + "\n")
        args = ["dataset", "validate", str(manifest), "--json", "--s3-endpoint-url"]
        result = CliRunner().invoke(app, [*args, server.endpoint])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        cached = tmp_path / "cache" / "customlabels" / "s3" / "bee-detection-demo" / "images"
        assert len(list(cached.iterdir())) == 6
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache2"))  # download again
        report = validate_manifest(manifest, fetch=S3Fetch(server.endpoint))
    assert report.usable and report.valid_lines == 6 and not report.errors, report.issues
    assert summary == report.summary()
    cached = tmp_path / "cache2" / "customlabels" / "s3" / "bee-detection-demo" / "images"
    assert len(list(cached.iterdir())) == 6


def test_an_unreachable_endpoint_stops_the_import_instead_of_invalidating_lines(
    tmp_path: Path, refused_s3_client: Any
) -> None:
    manifest = tmp_path / "m.manifest"
    manifest.write_text(json.dumps(LINE) + "\n")
    fetch = S3Fetch(client=refused_s3_client)
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        load_ground_truth(manifest, fetch=fetch, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing half-written
