"""Scale-out mode on real servers: SeaweedFS (S3), redis-server, Celery workers as processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import redis

from customlabels.errors import StoreUnavailableError
from customlabels.pipeline.dispatch import DispatchConfig, Dispatcher
from customlabels.pipeline.ledger import Ledger
from customlabels.pipeline.local_servers import SeaweedFS
from customlabels.pipeline.model import load_model
from customlabels.pipeline.worker import Outcome, process_image
from customlabels.storage import S3Store

from .support import S3_ENV, s3_client, wait_for

PREFIX = "test_images/"
EVENTS = "s3-events"


@pytest.fixture()
def bucket(seaweedfs: str) -> str:
    name = f"cl-{uuid.uuid4().hex[:12]}"
    s3_client(seaweedfs).create_bucket(Bucket=name)
    return name


class Workers:
    """``customlabels worker`` processes, stopped (or killed) by the test."""

    def __init__(self, tmp: Path, n: int, args: list[str], env: dict[str, str]) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for i in range(n):
            log = tmp / f"worker{i}.log"
            with log.open("wb") as fh:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "customlabels.cli.main", "worker", *args],
                        env={**os.environ, **S3_ENV, **env},
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            self.logs.append(log)
        wait_for(self._ready, 120, "celery workers", interval_s=0.3)

    def _ready(self) -> bool:
        for proc, log in zip(self.procs, self.logs, strict=True):
            text = log.read_text(errors="replace")
            if proc.poll() is not None:
                raise AssertionError(f"worker exited: {text[-3000:]}")
            if "worker process ready" not in text or " ready." not in text:
                return False
        return True

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _worker_args(broker: str, bucket: str, endpoint: str, model_dir: Path) -> list[str]:
    return [
        "--broker",
        broker,
        "--store",
        f"s3://{bucket}",
        "--s3-endpoint-url",
        endpoint,
        "--model",
        str(model_dir),
    ]


class DispatcherThread:
    def __init__(self, config: DispatchConfig) -> None:
        self.dispatcher = Dispatcher(config)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.dispatcher.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _event(bucket: str, key: str, etag: str, size: int) -> str:
    """The document AWS S3 / MinIO publish for an upload (key URL-encoded, '+' for spaces)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag},
        },
    }
    return json.dumps({"Records": [record]})


def _results(client: Any, bucket: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".json"):
                out[obj["Key"]] = obj
    return out


@pytest.fixture()
def stopper() -> Iterator[list[Any]]:
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        thing()


def test_200_uploads_via_events_and_listing_get_200_results_once(
    seaweedfs: str,
    redis_url: str,
    bucket: str,
    model_dir: Path,
    bccd_images: list[Path],
    tmp_path: Path,
    stopper: list[Any],
) -> None:
    client = s3_client(seaweedfs)
    r = redis.Redis.from_url(redis_url)
    workers = Workers(tmp_path, 2, _worker_args(redis_url, bucket, seaweedfs, model_dir), {})
    stopper.append(workers.stop)
    dispatcher = DispatcherThread(
        DispatchConfig(
            f"s3://{bucket}",
            redis_url,
            PREFIX,
            s3_endpoint_url=seaweedfs,
            events_list=EVENTS,
            reconcile_s=3.0,
        )
    )
    stopper.append(dispatcher.finish)
    keys = []
    for i, src in enumerate(bccd_images[:200]):
        key = f"{PREFIX}{'nested/dir/' if i % 3 == 0 else ''}{'ü ' if i % 5 == 0 else ''}{src.name}"
        data = src.read_bytes()
        etag = client.put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')
        keys.append(key)
        if i % 20 != 7:  # 10 events are lost: the listing must find those images
            r.lpush(EVENTS, _event(bucket, key, etag, len(data)))
    client.put_object(Bucket=bucket, Key="elsewhere/x.jpg", Body=bccd_images[0].read_bytes())
    r.lpush(EVENTS, _event(bucket, "elsewhere/x.jpg", "e", 1))
    r.lpush(EVENTS, _event("another-bucket", f"{PREFIX}y.jpg", "e", 1))
    wait_for(lambda: len(_results(client, bucket)) >= 200, 400, "200 results", interval_s=1.0)
    ledger = Ledger(r, bucket)
    wait_for(lambda: ledger.stats()["counts"]["IN_PROGRESS"] == 0, 30, "workers idle")
    assert sorted(_results(client, bucket)) == sorted(k + ".json" for k in keys)
    assert ledger.writes() == {k: 1 for k in keys}  # none twice, none missing
    doc = json.loads(client.get_object(Bucket=bucket, Key=keys[0] + ".json")["Body"].read())
    assert doc["Image"]["Name"] == keys[0] and doc["Image"]["Bucket"] == bucket
    assert "CustomLabels" in doc and doc["ModelVersion"]
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "customlabels.cli.main",
            "pipeline",
            "status",
            "--broker",
            redis_url,
            "--store",
            f"s3://{bucket}",
            "--json",
        ],
        capture_output=True,
        check=True,
    )
    report = json.loads(status.stdout)
    assert report["counts"]["QUEUED"] == 0 and report["counts"]["DONE"] == 200


def test_celery_worker_killed_mid_task_has_its_task_redone_once(
    seaweedfs: str,
    redis_url: str,
    bucket: str,
    model_dir: Path,
    bccd_images: list[Path],
    tmp_path: Path,
    stopper: list[Any],
) -> None:
    client = s3_client(seaweedfs)
    r = redis.Redis.from_url(redis_url)
    keys = [f"{PREFIX}{p.name}" for p in bccd_images[:3]]
    for key, src in zip(keys, bccd_images, strict=False):
        client.put_object(Bucket=bucket, Key=key, Body=src.read_bytes())
    workers = Workers(
        tmp_path,
        1,
        _worker_args(redis_url, bucket, seaweedfs, model_dir),
        {"CUSTOMLABELS_PIPELINE_DELAY_S": "1.0"},
    )
    stopper.append(workers.stop)
    dispatcher = DispatcherThread(
        DispatchConfig(f"s3://{bucket}", redis_url, PREFIX, s3_endpoint_url=seaweedfs)
    )
    stopper.append(dispatcher.finish)
    ledger = Ledger(r, bucket)
    key, holder = wait_for(
        lambda: next(iter(ledger.inflight().items()), None), 60, "a task in flight"
    )
    pid = int(holder.split(":")[1])
    assert pid != workers.procs[0].pid  # a pool process, not the worker's main process
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(_results(client, bucket)) == 3, 120, "3 results", interval_s=0.5)
    wait_for(lambda: ledger.stats()["counts"]["IN_PROGRESS"] == 0, 30, "workers idle")
    assert ledger.writes() == {k: 1 for k in keys}
    log = workers.logs[0].read_text()
    assert "WorkerLostError" in log or "signal 9" in log


def test_server_side_encryption_settings_reach_put_object(
    seaweedfs: str, bucket: str, model_dir: Path, bccd_images: list[Path]
) -> None:
    client = s3_client(seaweedfs)
    key = f"{PREFIX}{bccd_images[0].name}"
    client.put_object(Bucket=bucket, Key=key, Body=bccd_images[0].read_bytes())
    model = load_model(model_dir)
    sse_s3 = S3Store(bucket, client=client, sse={"ServerSideEncryption": "AES256"})
    assert process_image(sse_s3, key, model).outcome is Outcome.WRITTEN
    head = client.head_object(Bucket=bucket, Key=key + ".json")
    assert head["ServerSideEncryption"] == "AES256"  # SeaweedFS encrypts and says so
    assert json.loads(client.get_object(Bucket=bucket, Key=key + ".json")["Body"].read())["Image"]
    # SSE-KMS: SeaweedFS without a configured KMS refuses the write (no silent plaintext)
    kms = S3Store(
        bucket, client=client, sse={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k1"}
    )
    client.delete_object(Bucket=bucket, Key=key + ".json")
    with pytest.raises(StoreUnavailableError, match=r"InternalError|KMS"):
        process_image(kms, key, model)  # a 500: retried as an outage, never written plain
    assert "Contents" not in client.list_objects_v2(Bucket=bucket, Prefix=key + ".json")


def test_seaweedfs_metadata_feed_drives_the_workers(
    seaweedfs: str,
    seaweed: SeaweedFS,
    redis_url: str,
    bucket: str,
    model_dir: Path,
    bccd_images: list[Path],
    tmp_path: Path,
    stopper: list[Any],
) -> None:
    client = s3_client(seaweedfs)
    workers = Workers(tmp_path, 1, _worker_args(redis_url, bucket, seaweedfs, model_dir), {})
    stopper.append(workers.stop)
    dispatcher = DispatcherThread(
        DispatchConfig(
            f"s3://{bucket}",
            redis_url,
            PREFIX,
            s3_endpoint_url=seaweedfs,
            seaweed_filer=seaweed.filer,
            reconcile_s=3600,  # no listing after the start: only the feed can find new images
        )
    )
    stopper.append(dispatcher.finish)
    time.sleep(1.5)  # the feed subscribes from "now"
    keys = [f"{PREFIX}feed/ü {p.name}" for p in bccd_images[:4]]
    for key, src in zip(keys, bccd_images, strict=False):
        client.put_object(Bucket=bucket, Key=key, Body=src.read_bytes())
    client.put_object(Bucket=bucket, Key="elsewhere/z.jpg", Body=bccd_images[0].read_bytes())
    wait_for(lambda: len(_results(client, bucket)) >= 4, 120, "4 results", interval_s=0.5)
    ledger = Ledger(redis.Redis.from_url(redis_url), bucket)
    wait_for(lambda: ledger.stats()["counts"]["IN_PROGRESS"] == 0, 30, "workers idle")
    time.sleep(1.0)  # our own result writes also appear on the feed: they must not make jobs
    assert sorted(_results(client, bucket)) == sorted(k + ".json" for k in keys)
    assert ledger.writes() == {k: 1 for k in keys}
    assert dispatcher.dispatcher.dispatched == 4


def test_sse_flags_reach_put_object_and_a_refused_write_ends_as_a_dead_letter(
    seaweedfs: str,
    redis_url: str,
    bucket: str,
    model_dir: Path,
    bccd_images: list[Path],
    tmp_path: Path,
    stopper: list[Any],
) -> None:
    client = s3_client(seaweedfs)
    key = f"{PREFIX}{bccd_images[0].name}"
    client.put_object(Bucket=bucket, Key=key, Body=bccd_images[0].read_bytes())
    args = _worker_args(redis_url, bucket, seaweedfs, model_dir)
    args += ["--sse", "aws:kms", "--sse-kms-key-id", "k1", "--max-retries", "1"]
    args += ["--outage-wait", "1"]  # the refusal is a 500: waited out briefly, then retried
    workers = Workers(tmp_path, 1, args, {})
    stopper.append(workers.stop)
    dispatcher = DispatcherThread(
        DispatchConfig(f"s3://{bucket}", redis_url, PREFIX, s3_endpoint_url=seaweedfs)
    )
    stopper.append(dispatcher.finish)
    ledger = Ledger(redis.Redis.from_url(redis_url), bucket)
    wait_for(lambda: ledger.stats()["counts"]["DEAD"] == 1, 120, "a dead letter", interval_s=0.5)
    error = json.loads(redis.Redis.from_url(redis_url).hget(f"customlabels:{bucket}:dead", key))
    assert error["__type"] == "InternalServerError" and "InternalError" in error["message"]
    assert key + ".json" not in _results(client, bucket)  # nothing written unencrypted


def test_rabbitmq_broker_with_a_redis_ledger(
    seaweedfs: str,
    amqp_url: str,
    redis_url: str,
    bucket: str,
    model_dir: Path,
    bccd_images: list[Path],
    tmp_path: Path,
    stopper: list[Any],
) -> None:
    client = s3_client(seaweedfs)
    keys = [f"{PREFIX}rabbit/{p.name}" for p in bccd_images[:20]]
    for key, src in zip(keys, bccd_images, strict=False):
        client.put_object(Bucket=bucket, Key=key, Body=src.read_bytes())
    args = [*_worker_args(amqp_url, bucket, seaweedfs, model_dir), "--ledger", redis_url]
    workers = Workers(tmp_path, 2, args, {"CUSTOMLABELS_PIPELINE_DELAY_S": "0.3"})
    stopper.append(workers.stop)
    dispatcher = DispatcherThread(
        DispatchConfig(
            f"s3://{bucket}", amqp_url, PREFIX, s3_endpoint_url=seaweedfs, ledger_url=redis_url
        )
    )
    stopper.append(dispatcher.finish)
    ledger = Ledger(redis.Redis.from_url(redis_url), bucket)
    _, holder = wait_for(lambda: next(iter(ledger.inflight().items()), None), 60, "a task")
    os.kill(int(holder.split(":")[1]), signal.SIGKILL)  # a pool process, mid-task
    wait_for(lambda: len(_results(client, bucket)) == 20, 180, "20 results", interval_s=0.5)
    wait_for(lambda: ledger.stats()["counts"]["IN_PROGRESS"] == 0, 30, "workers idle")
    assert ledger.writes() == {k: 1 for k in keys}
