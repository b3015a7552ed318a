"""``customlabels worker --sqs-queue-url``: S3 → SQS → worker → ``<key>.json``, on moto's server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from customlabels.pipeline.local_servers import wait_until as wait_for
from customlabels.pipeline.model import load_model
from customlabels.pipeline.retry import OutagePolicy
from customlabels.pipeline.sqs import SqsConsumer, SqsSettings

from .conftest import AWS_ENV, PREFIX, Stack, make_stack


class Worker:
    """A ``customlabels worker --sqs-queue-url`` process."""

    def __init__(self, stack: Stack, model_dir: Path, log: Path, *extra: str, **env: str) -> None:
        args = [
            sys.executable, "-m", "customlabels.cli.main", "worker",
            "--sqs-queue-url", stack.queue_url, "--store", f"s3://{stack.bucket}",
            "--model", str(model_dir), "--prefix", PREFIX,
            "--s3-endpoint-url", stack.endpoint, "--sqs-endpoint-url", stack.endpoint,
            "--sqs-wait", "2",  # a SIGTERMed worker stops within its current long poll
            *extra,
        ]  # fmt: skip
        self.log = log
        with log.open("wb") as fh:
            self.proc = subprocess.Popen(
                args, env={**os.environ, **AWS_ENV, **env}, stdout=fh, stderr=subprocess.STDOUT
            )
        wait_for(self._ready, 120, "sqs worker ready", every_s=0.3)

    def _ready(self) -> bool:
        text = self.log.read_text(errors="replace")
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {text[-3000:]}")
        return "sqs worker ready" in text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture()
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def _consumer(stack: Stack, model_dir: Path, **settings: Any) -> SqsConsumer:
    return SqsConsumer(
        SqsSettings(
            queue_url=stack.queue_url,
            store_url=f"s3://{stack.bucket}",
            model_dir=model_dir,
            prefix=PREFIX,
            s3_endpoint_url=stack.endpoint,
            sqs_endpoint_url=stack.endpoint,
            wait_s=1,
            retry_first_s=0,
            outage=OutagePolicy(give_up_s=1),
            **settings,
        ),
        model=load_model(model_dir),
    )


@pytest.mark.slow  # two worker processes through 200 images: minutes on 2 shared cores
def test_200_uploads_get_200_results_none_twice(
    stack: Stack, model_dir: Path, bccd_images: list[Path], tmp_path: Path, workers: list[Worker]
) -> None:
    workers += [Worker(stack, model_dir, tmp_path / f"w{i}.log") for i in range(2)]
    burst = bccd_images[:200]
    keys = [f"{PREFIX}{'nested/' if i % 4 == 0 else ''}{p.name}" for i, p in enumerate(burst)]
    for key, src in zip(keys, burst, strict=True):
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=src.read_bytes())
    other = bccd_images[0].read_bytes()
    stack.s3.put_object(Bucket=stack.bucket, Key="elsewhere/x.jpg", Body=other)
    wait_for(lambda: len(stack.outputs()) >= 200, 600, "200 results", every_s=2.0)
    wait_for(lambda: stack.depth() == 0, 120, "the queue drained", every_s=1.0)
    assert sorted(stack.outputs()) == sorted(k + ".json" for k in keys)
    assert {k: stack.writes(k + ".json") for k in keys} == {k: 1 for k in keys}  # none twice
    doc = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=keys[0] + ".json")["Body"].read())
    assert doc["Image"] == {
        "Bucket": stack.bucket,
        "Name": keys[0],
        "ETag": doc["Image"]["ETag"],
        "Size": bccd_images[0].stat().st_size,
    }
    assert doc["ModelVersion"] and isinstance(doc["CustomLabels"], list)
    assert stack.depth(stack.dlq_url) == 0  # the test event and the results' events: deleted


def test_worker_killed_mid_image_message_reappears_and_is_written_once(
    moto: str, model_dir: Path, bccd_images: list[Path], tmp_path: Path, workers: list[Worker]
) -> None:
    stack = make_stack(moto, visibility_s=4)
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)  # the test event: the next message is ours
    slow = Worker(
        stack, model_dir, tmp_path / "slow.log", "--visibility-timeout", "4",
        CUSTOMLABELS_PIPELINE_DELAY_S="30",
    )  # fmt: skip
    workers.append(slow)
    key = f"{PREFIX}{bccd_images[0].name}"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=bccd_images[0].read_bytes())
    wait_for(lambda: _in_flight(stack) == 1, 60, "the image in flight")
    time.sleep(6.0)  # past the queue's 4 s timeout: only the heartbeat keeps the message hidden
    assert _in_flight(stack) == 1 and stack.depth() == 1
    os.kill(slow.proc.pid, signal.SIGKILL)
    slow.proc.wait(timeout=10)
    workers.append(Worker(stack, model_dir, tmp_path / "fresh.log"))
    wait_for(lambda: stack.writes(key + ".json") == 1, 120, "the result", every_s=0.5)
    wait_for(lambda: stack.depth() == 0, 60, "the message deleted", every_s=0.5)
    assert stack.writes(key + ".json") == 1
    assert key + ".error.json" not in stack.outputs()
    assert "wrote" not in slow.log.read_text()  # the killed worker never finished it


def _in_flight(stack: Stack) -> int:
    attrs = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_corrupt_image_gets_error_json_and_its_message_deleted(
    stack: Stack, model_dir: Path, bccd_images: list[Path]
) -> None:
    good, bad = f"{PREFIX}good.jpg", f"{PREFIX}bad.jpg"
    stack.s3.put_object(Bucket=stack.bucket, Key=good, Body=bccd_images[1].read_bytes())
    stack.s3.put_object(Bucket=stack.bucket, Key=bad, Body=bccd_images[1].read_bytes()[:3000])
    consumer = _consumer(stack, model_dir)
    counts = consumer.run(threading.Event(), max_idle_polls=2)
    error = json.loads(
        stack.s3.get_object(Bucket=stack.bucket, Key=bad + ".error.json")["Body"].read()
    )
    assert error["Error"]["__type"] == "InvalidImageFormatException"
    assert stack.writes(good + ".json") == 1 and bad + ".json" not in stack.outputs()
    # the test event, 2 uploads and the 2 outputs' own events: all deleted, nothing left
    assert counts["deleted"] == 5 and counts["WRITTEN"] == 1 and counts["FAILED"] == 1
    assert stack.depth() == 0 and stack.depth(stack.dlq_url) == 0


def test_a_message_that_keeps_failing_goes_to_the_dead_letter_queue(
    moto: str, model_dir: Path
) -> None:
    stack = make_stack(moto, visibility_s=1, max_receive=2)
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)  # drop the test event
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="this is not an S3 event")
    consumer = _consumer(stack, model_dir)
    stop = threading.Event()
    for _ in range(8):
        consumer.poll(stop)
        if stack.depth(stack.dlq_url):
            break
    dead = stack.sqs.receive_message(QueueUrl=stack.dlq_url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in dead] == ["this is not an S3 event"]
    assert consumer.counts["poison"] == 2 and stack.depth() == 0


def test_sse_kms_results_are_encrypted_with_the_key_and_readable(
    stack: Stack, model_dir: Path, bccd_images: list[Path]
) -> None:
    key_id = stack.kms.create_key(Description="results")["KeyMetadata"]["Arn"]
    image = f"{PREFIX}{bccd_images[2].name}"
    stack.s3.put_object(Bucket=stack.bucket, Key=image, Body=bccd_images[2].read_bytes())
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}
    consumer = _consumer(stack, model_dir, sse=sse)
    consumer.run(threading.Event(), max_idle_polls=2)
    head = stack.s3.head_object(Bucket=stack.bucket, Key=image + ".json")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_id
    body = stack.s3.get_object(Bucket=stack.bucket, Key=image + ".json")["Body"].read()
    assert json.loads(body)["Image"]["Name"] == image
