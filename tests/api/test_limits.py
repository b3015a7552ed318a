"""Hostile input against a live server: oversized bodies refused before they are read, slow
clients timed out without holding a worker, header and JSON nesting bombs refused."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from customlabels.api import create_app
from customlabels.api.limits import MAX_JSON_DEPTH, json_depth, max_body_bytes
from customlabels.api.server import serve_in_thread
from customlabels.service import ServiceSettings, open_context

from ._live import KEY, SECRET, make_client

TIMEOUT_S = 1.0  # the server's request timeout in these tests


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServiceSettings]]:
    settings = ServiceSettings(
        home=tmp_path_factory.mktemp("limits") / "home",
        access_key_id=KEY,
        secret_access_key=SECRET,
        request_timeout_s=TIMEOUT_S,
    )
    ctx = open_context(settings)
    try:
        with serve_in_thread(create_app(settings, ctx)) as url:
            yield url, settings
    finally:
        ctx.close()


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends on a raw socket, until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the server's answer on a raw socket (read until closed)."""
    head, _, body = _read_all(sock).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body.startswith(b"{") else {}


def _head(target: str, extra: str = "") -> bytes:
    return (
        "POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-amz-json-1.1\r\n"
        f"X-Amz-Target: RekognitionService.{target}\r\n{extra}\r\n"
    ).encode()


def test_a_declared_oversized_body_is_refused_before_it_is_sent(server: Any) -> None:
    url, settings = server
    with _connect(url) as sock:
        sock.sendall(_head("DetectCustomLabels", "Content-Length: 1000000000\r\n"))
        status, body = _response(sock)  # answered although not one byte of the body was sent
    assert status == 400
    assert body["__type"] == "ImageTooLargeException"
    assert str(max_body_bytes(settings)) in body["message"]


def test_a_chunked_body_is_cut_off_at_the_limit(server: Any) -> None:
    url, settings = server
    chunk = b"x" * 65536
    sent = 0
    with _connect(url) as sock:
        sock.sendall(_head("DescribeProjects", "Transfer-Encoding: chunked\r\n"))
        try:
            while sent < 4 * max_body_bytes(settings):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:  # the server answered and closed while we were still sending
            pass
        status, body = _response(sock)
    assert status == 400
    assert body["__type"] == "InvalidParameterException"
    assert "over the limit" in body["message"]
    assert sent < 4 * max_body_bytes(settings)


def test_slow_clients_time_out_without_holding_a_worker(server: Any) -> None:
    """More slow clients than the thread pool has workers (40), trickling their bodies or
    their headers: each is answered 408 or disconnected after the timeout, and a normal
    request meanwhile is answered at once."""
    url, _ = server
    slow_bodies = [_connect(url) for _ in range(45)]
    slow_heads = [_connect(url) for _ in range(5)]
    try:
        for sock in slow_bodies:
            sock.sendall(_head("DescribeProjects", "Content-Length: 100\r\n") + b'{"Max')
        for sock in slow_heads:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: te")
        described = make_client(url).describe_projects()  # not queued behind the slow ones
        assert described["ProjectDescriptions"] == []
        stop = threading.Event()

        def trickle(sock: socket.socket) -> None:  # a byte every 0.2 s, for ever
            while not stop.wait(0.2):
                try:
                    sock.send(b"s")
                except OSError:
                    return

        threads = [threading.Thread(target=trickle, args=(s,)) for s in slow_heads]
        for thread in threads:
            thread.start()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(_response, slow_bodies))
        assert {status for status, _ in answers} == {408}
        assert {body["__type"] for _, body in answers} == {"RequestTimeoutException"}
        for sock in slow_heads:  # closed by the server although bytes kept coming
            assert _read_all(sock) == b""
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        for sock in slow_bodies + slow_heads:
            sock.close()


def test_a_header_bomb_is_refused(server: Any) -> None:
    url, _ = server
    for headers in (
        {"X-Big": "a" * 64 * 1024},
        {f"X-Many-{i}": "b" * 20 for i in range(2000)},
    ):
        response = httpx.get(f"{url}/health", headers=headers)
        assert response.status_code == 400
        assert response.json()["__type"] == "InvalidParameterException"
        assert "request headers" in response.json()["message"]
    assert httpx.get(f"{url}/health").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"ProjectName": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001,
        b"[" * 5_000_000,  # never closed
    ],
)
def test_json_nesting_bombs_are_refused(server: Any, body: bytes) -> None:
    url, _ = server
    aws = httpx.post(
        f"{url}/",
        content=body,
        headers={"X-Amz-Target": "RekognitionService.CreateProject"},
    )
    rest = httpx.post(f"{url}/v1/projects", content=body, auth=(KEY, SECRET))
    for response in (aws, rest):
        assert response.status_code == 400
        assert response.json() == {
            "__type": "InvalidParameterException",
            "message": f"request body: JSON nested deeper than {MAX_JSON_DEPTH} levels",
        }


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"1", 0),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{"}', 1),  # brackets inside strings do not count
        (b'{"a": "\\"[[[["}', 1),  # nor after an escaped quote
        (b"[" * 40 + b"]" * 40, 40),
    ],
)
def test_json_depth(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_ordinary_requests_pass_the_limits(server: Any) -> None:
    url, _ = server
    client = make_client(url)
    arn = client.create_project(ProjectName="ok")["ProjectArn"]
    listed = httpx.get(f"{url}/v1/projects", auth=(KEY, SECRET)).json()
    assert [p["ProjectArn"] for p in listed["ProjectDescriptions"]] == [arn]
    client.delete_project(ProjectArn=arn)
