"""The Lambda entry point with the event shapes AWS sends, and the build context it ships in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from customlabels.aws import lambda_handler
from customlabels.aws.bundle import base_requirements, write_lambda_context
from customlabels.aws.handler import _Container

from .conftest import AWS_ENV, PREFIX, Stack


def _s3_record(bucket: str, key: str) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
    }


def _s3_put(bucket: str, key: str) -> dict[str, Any]:
    return {"Records": [_s3_record(bucket, key)]}


def _sns(bucket: str, key: str) -> dict[str, Any]:
    message = json.dumps(_s3_put(bucket, key))
    return {
        "Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": message}}]
    }


def _eventbridge(bucket: str, key: str) -> dict[str, Any]:
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}},
    }


def _sqs(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{i}", "eventSource": "aws:sqs", "body": body}
            for i, body in enumerate(bodies)
        ]
    }


@pytest.fixture()
def lambda_env(
    stack: Stack, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    env = {
        "CUSTOMLABELS_MODEL": str(model_dir),
        "CUSTOMLABELS_PREFIX": PREFIX,
        "AWS_ENDPOINT_URL_S3": stack.endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _Container.reset()
    yield env
    _Container.reset()


def _upload(stack: Stack, bccd_images: list[Path], names: list[str]) -> list[str]:
    keys = [f"{PREFIX}{name}" for name in names]
    for key, src in zip(keys, bccd_images, strict=False):
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=src.read_bytes())
    return keys


def test_each_event_shape_writes_its_result(
    stack: Stack, lambda_env: dict[str, str], bccd_images: list[Path]
) -> None:
    keys = _upload(stack, bccd_images, ["put a+b.jpg", "sns.jpg", "bridge ü.jpg", "sqs.jpg"])
    b = stack.bucket
    assert lambda_handler(_s3_put(b, keys[0])) == {"results": {"WRITTEN": 1}}
    assert lambda_handler(_sns(b, keys[1])) == {"results": {"WRITTEN": 1}}
    assert lambda_handler(_eventbridge(b, keys[2])) == {"results": {"WRITTEN": 1}}
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": b})
    assert lambda_handler({"Service": "Amazon S3", "Event": "s3:TestEvent"}) == {"results": {}}
    sns_body = json.dumps({"Type": "Notification", "Message": json.dumps(_s3_put(b, keys[3]))})
    own_output = json.dumps(_s3_put(b, keys[0] + ".json"))
    assert lambda_handler(_sqs(test_event, sns_body, own_output)) == {"batchItemFailures": []}
    assert sorted(stack.outputs()) == sorted(k + ".json" for k in keys)
    assert all(stack.writes(k + ".json") == 1 for k in keys)
    # the same event again: the result is current, nothing is written twice
    assert lambda_handler(_s3_put(b, keys[0])) == {"results": {"SKIPPED": 1}}
    assert stack.writes(keys[0] + ".json") == 1


def test_sqs_batch_reports_only_the_failing_records(
    stack: Stack, lambda_env: dict[str, str], bccd_images: list[Path]
) -> None:
    good, bad = _upload(stack, [bccd_images[0], bccd_images[1]], ["good.jpg", "bad.jpg"])
    stack.s3.put_object(Bucket=stack.bucket, Key=bad, Body=b"GIF89a not a jpeg")
    batch = _sqs(
        json.dumps(_s3_put(stack.bucket, good)),
        "not an S3 event",  # poison: back to the queue, then its dead-letter queue
        json.dumps(_s3_put(stack.bucket, bad)),  # the image's fault: error JSON, done
    )
    assert lambda_handler(batch) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    error = json.loads(
        stack.s3.get_object(Bucket=stack.bucket, Key=bad + ".error.json")["Body"].read()
    )
    assert error["Error"]["__type"] == "InvalidImageFormatException"
    assert stack.writes(good + ".json") == 1


def test_store_outage_fails_the_record_and_writes_no_error(
    lambda_env: dict[str, str], bccd_images: list[Path], stack: Stack
) -> None:
    os.environ["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9"  # refused (lambda_env restores it)

    class _Ctx:  # Lambda's context: 6 s left, so the outage wait gives up after ~1 s
        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 6000

    batch = _sqs(json.dumps(_s3_put(stack.bucket, f"{PREFIX}x.jpg")))
    assert lambda_handler(batch, _Ctx()) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert stack.outputs() == {}


def test_export_lambda_writes_a_build_context_without_torch(
    model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ctx"
    result = subprocess.run(
        [
            sys.executable, "-m", "customlabels.cli.main", "export", str(model_dir),
            "--out", str(out), "--lambda", "--prefix", "test_images/",
        ],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "Dockerfile", "customlabels", "model", "requirements.txt", "template.yaml",
    ]  # fmt: skip
    assert sorted(p.name for p in (out / "model").iterdir()) == ["model.json", "model.onnx"]
    docker = (out / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3." in docker
    assert 'CMD ["customlabels.aws.lambda_handler"]' in docker
    lines = (out / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    names = {pin.split("==")[0].split("[")[0].lower() for pin in pins}
    assert {"onnxruntime", "boto3", "numpy", "pillow"} <= names
    assert not names & {"torch", "torchvision", "onnx", "onnxscript"}  # training-only
    assert pins == base_requirements() and all("==" in pin for pin in pins)
    assert not list((out / "customlabels").rglob("__pycache__"))
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which(
        "cfn-lint"
    )
    assert cfn_lint, "cfn-lint not installed (pip install cfn-lint aws-sam-translator)"
    lint = subprocess.run(
        [cfn_lint, str(out / "template.yaml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    template = (out / "template.yaml").read_text()
    for resource in ("AWS::KMS::Key", "RedrivePolicy", "ReportBatchItemFailures", "aws:kms"):
        assert resource in template


_RUN_FROM_BUNDLE = """
import json, sys
import customlabels
from customlabels.aws import lambda_handler
event = json.loads(sys.argv[1])
print(json.dumps({
    "package": customlabels.__file__,
    "result": lambda_handler(event),
    "torch": "torch" in sys.modules,
}))
"""


def test_the_handler_runs_from_the_bundle(
    stack: Stack, model_dir: Path, bccd_images: list[Path], tmp_path: Path
) -> None:
    ctx = write_lambda_context(model_dir, tmp_path / "ctx")
    key = _upload(stack, bccd_images, ["from bundle.jpg"])[0]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CUSTOMLABELS_")},
        **AWS_ENV,
        "PYTHONPATH": str(ctx),  # the bundle's package, not the worktree's
        "LAMBDA_TASK_ROOT": str(ctx),  # so the model is found where the image puts it
        "AWS_ENDPOINT_URL_S3": stack.endpoint,
        "CUSTOMLABELS_PREFIX": PREFIX,
    }
    body = json.dumps(_s3_put(stack.bucket, key))
    run = subprocess.run(
        [sys.executable, "-c", _RUN_FROM_BUNDLE, json.dumps(_sqs(body))],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["package"].startswith(str(ctx)) and out["torch"] is False
    assert out["result"] == {"batchItemFailures": []}
    assert stack.writes(key + ".json") == 1
