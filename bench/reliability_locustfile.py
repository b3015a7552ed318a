"""Locust users of the reliability load run (``bench/reliability.py``, ``tests/api/test_load.py``).

Each user sends a mix of DetectCustomLabels requests, signed with Signature V4 like boto3 (the
JSON body built here, so a corrupt or oversized image is sent exactly as a client would), and
checks every answer: a valid image must get exactly the in-process answer; every bad request
its own Rekognition error. Anything else, and every 5xx, is a Locust failure named after what
was wrong. The scenario comes from the JSON file named by ``RELIABILITY_SCENARIO``:
``key``/``secret``, ``running`` (a version that stays RUNNING), ``churned`` (one stopped and
started again during the run), ``missing`` (a well-formed ARN of no version), ``image`` (path),
``expected`` (its answer).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from locust import HttpUser, constant, task

SCENARIO: dict[str, Any] = json.loads(Path(os.environ["RELIABILITY_SCENARIO"]).read_text())
IMAGE = Path(SCENARIO["image"]).read_bytes()
CORRUPT = IMAGE[: len(IMAGE) // 3]  # a JPEG cut short: magic bytes right, pixels missing
OVERSIZED = b"\xff\xd8\xff" + b"\0" * SCENARIO["max_image_bytes"]  # one byte over the limit
TARGET = "RekognitionService.DetectCustomLabels"


def _body(arn: str, image: bytes) -> bytes:
    return json.dumps(
        {"ProjectVersionArn": arn, "Image": {"Bytes": base64.b64encode(image).decode()}}
    ).encode()


# request bodies are built once: the run measures the server, not the load generator
BODIES = {
    "valid": _body(SCENARIO["running"], IMAGE),
    "corrupt": _body(SCENARIO["running"], CORRUPT),
    "oversized": _body(SCENARIO["running"], OVERSIZED),
    "wrong-arn": _body(SCENARIO["missing"], IMAGE),
    "unsigned": _body(SCENARIO["running"], IMAGE),
    "stopped-mid-run": _body(SCENARIO["churned"], IMAGE),
}
# what each kind of request may be answered with: (status, __type or the expected body)
EXPECTED: dict[str, list[tuple[int, Any]]] = {
    "valid": [(200, SCENARIO["expected"])],
    "corrupt": [(400, "InvalidImageFormatException")],
    "oversized": [(400, "ImageTooLargeException")],
    "wrong-arn": [(400, "ResourceNotFoundException")],
    "unsigned": [(400, "AccessDeniedException")],
    "stopped-mid-run": [(200, SCENARIO["expected"]), (400, "ResourceNotReadyException")],
}


def verdict(kind: str, status: int, text: str) -> str | None:
    """None when the answer is right for this kind of request, else what is wrong."""
    if status >= 500:
        return f"5xx: {status} {text[:200]}"
    try:
        body = json.loads(text)
    except ValueError:
        return f"wrong answer: not JSON ({status}) {text[:200]}"
    for want_status, want in EXPECTED[kind]:
        if status != want_status:
            continue
        if status == 200 and body == want:
            return None
        if status != 200 and set(body) == {"__type", "message"} and body["__type"] == want:
            return None
    return f"wrong answer: {status} {text[:200]}"


class DetectUser(HttpUser):
    """One client sending the mix back to back (weights: mostly valid detections)."""

    wait_time = constant(0)

    def _send(self, kind: str) -> None:
        body = BODIES[kind]
        headers = {"X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"}
        if kind != "unsigned":
            request = AWSRequest(method="POST", url=f"{self.host}/", data=body, headers=headers)
            credentials = Credentials(SCENARIO["key"], SCENARIO["secret"])
            SigV4Auth(credentials, "rekognition", "us-east-1").add_auth(request)
            headers = dict(request.headers.items())
        with self.client.post(
            "/", data=body, headers=headers, name=kind, catch_response=True
        ) as response:
            problem = verdict(kind, response.status_code, response.text)
            if problem:
                response.failure(problem)
            else:
                response.success()

    @task(10)
    def valid(self) -> None:
        self._send("valid")

    @task(2)
    def corrupt(self) -> None:
        self._send("corrupt")

    @task(1)
    def oversized(self) -> None:
        self._send("oversized")

    @task(1)
    def wrong_arn(self) -> None:
        self._send("wrong-arn")

    @task(1)
    def unsigned(self) -> None:
        self._send("unsigned")

    @task(3)
    def stopped_mid_run(self) -> None:
        self._send("stopped-mid-run")
