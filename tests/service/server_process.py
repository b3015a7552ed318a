"""A real ``customlabels serve`` process for the fault tests: started, SIGKILLed, restarted.

The server runs :func:`customlabels.api.server.run` (what ``customlabels serve`` runs) in a
child interpreter, with settings the CLI does not expose (a stand-in training command), given
as JSON on its command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from customlabels.pipeline.local_servers import free_port, stop_process, wait_until

_RUN = (
    "import json, sys\n"
    "from customlabels.api.server import run\n"
    "from customlabels.service import ServiceSettings\n"
    "run(ServiceSettings(**json.loads(sys.argv[1])), log_level='warning')\n"
)


@dataclass
class ServerProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self) -> Any:
        """boto3's rekognition client (the server runs without auth, on loopback)."""
        return boto3.client(
            "rekognition",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="AKIDANY",
            aws_secret_access_key="any",
            config=Config(retries={"max_attempts": 1}, read_timeout=120),
        )

    def sigkill(self) -> None:
        """Kill the server with no chance to clean up (as the OOM killer or a power cut)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def _port(proc: subprocess.Popen[bytes]) -> int:
    port: int = json.loads(proc.args[-1])["port"]  # type: ignore[index]
    return port


def log_of(proc: subprocess.Popen[bytes]) -> Path:
    """The file a server process writes its output to."""
    home = Path(json.loads(proc.args[-1])["home"])  # type: ignore[index]
    return home.parent / f"server-{_port(proc)}.log"


def start_server(home: Path, **settings: Any) -> subprocess.Popen[bytes]:
    """Start a server process on ``home`` (without waiting for it to answer); its output goes
    to :func:`log_of`."""
    port = free_port()
    raw = {"home": str(home), "auth": False, "port": port, **settings}
    log = home.parent / f"server-{port}.log"
    home.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", _RUN, json.dumps(raw, default=str)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


@contextmanager
def server_process(home: Path, **settings: Any) -> Iterator[ServerProcess]:
    """A server answering on ``home``; stopped (SIGTERM, then SIGKILL) on exit if still alive."""
    proc = start_server(home, **settings)
    url, log = f"http://127.0.0.1:{_port(proc)}", log_of(proc)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 60, "the server to answer")
        yield ServerProcess(url, proc, log)
    finally:
        stop_process(proc, grace_s=20)
