"""A private PostgreSQL cluster on 127.0.0.1 (free port) for the catalog tests (service area).

The cluster is started once per test session (``initdb`` + ``pg_ctl start``, as the ``postgres``
system user when the tests run as root: initdb refuses root) and stopped afterwards; each test
gets a fresh database in it. ``scripts/install-system.sh`` installs PostgreSQL, so a missing
``initdb`` FAILS the tests rather than skipping them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_databases = itertools.count()


def _pg_bin() -> Path:
    found = shutil.which("initdb") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)), None
    )
    if not found:
        pytest.fail(
            "PostgreSQL's initdb not found (on PATH or /usr/lib/postgresql/*/bin): "
            "run scripts/install-system.sh"
        )
    return Path(found).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The base URL ``postgresql+psycopg://postgres@127.0.0.1:PORT`` of a running cluster."""
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="customlabels-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root but there is no 'postgres' system user to run initdb")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            output = done.stderr or done.stdout
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {output}")

    port = _free_port()
    pg_ctl = str(bindir / "pg_ctl")
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-N")
        run(
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w",
            "start",
        )
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc}\n{tail}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database in the session's cluster; dropped after the test."""
    import psycopg

    name = f"catalog_{os.getpid()}_{next(_databases)}"
    dsn = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{dsn}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres_server}/{name}"
    finally:
        with psycopg.connect(f"{dsn}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
