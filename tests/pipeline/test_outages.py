"""Outages are not bad images: a store that stops answering is waited out, never an error file."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from customlabels.errors import StoreUnavailableError
from customlabels.pipeline.local_servers import SeaweedFS
from customlabels.pipeline.model import load_model
from customlabels.pipeline.retry import OutagePolicy, backoff_delay, through_outages
from customlabels.pipeline.worker import Outcome, ProcessResult, process_image
from customlabels.storage import S3Store

from .support import s3_client, wait_for

PREFIX = "test_images/"


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_delay(n, 0.5, 3.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_through_outages_gives_up_after_its_window_and_stops_on_request() -> None:
    calls: list[float] = []

    def down() -> None:
        calls.append(time.monotonic())
        raise StoreUnavailableError("s3://b/k: store unreachable")

    with pytest.raises(StoreUnavailableError):
        through_outages(down, OutagePolicy(first_s=0.05, max_s=0.1, give_up_s=0.5))
    assert 3 <= len(calls) <= 12 and calls[-1] - calls[0] < 0.6
    stop = threading.Event()
    stop.set()
    calls.clear()
    with pytest.raises(StoreUnavailableError):
        through_outages(down, OutagePolicy(first_s=10, give_up_s=60), stop)
    assert len(calls) == 1  # no waiting once asked to stop


def test_a_refused_connection_writes_nothing_and_is_raised(
    model_dir: Path, refused_s3_client: Any
) -> None:
    with pytest.raises(StoreUnavailableError):
        store = S3Store("bucket", client=refused_s3_client)
        process_image(store, f"{PREFIX}a.jpg", load_model(model_dir))


def test_seaweedfs_stopped_mid_burst_every_image_gets_one_result_and_no_error(
    seaweed: SeaweedFS, model_dir: Path, bccd_images: list[Path]
) -> None:
    client = s3_client(seaweed.endpoint)
    bucket = f"cl-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    keys = [f"{PREFIX}{p.name}" for p in bccd_images[:30]]
    for key, src in zip(keys, bccd_images, strict=False):
        client.put_object(Bucket=bucket, Key=key, Body=src.read_bytes())
    model = load_model(model_dir)
    store = S3Store(bucket, client=client)
    results: list[ProcessResult] = []
    policy = OutagePolicy(first_s=0.5, max_s=2.0, give_up_s=120.0)

    def burst() -> None:
        for key in keys:
            work = lambda key=key: process_image(store, key, model)  # noqa: E731
            results.append(through_outages(work, policy, what=key))

    worker = threading.Thread(target=burst)
    worker.start()
    wait_for(lambda: len(results) >= 5, 120, "5 results")
    seaweed.process.stop()  # mid-burst: the store is gone
    stopped_at = len(results)
    time.sleep(3.0)
    seaweed.process.start()
    worker.join(timeout=300)
    assert not worker.is_alive()
    assert stopped_at < len(keys)  # the outage did hit images still to do
    assert [r.key for r in results] == keys
    assert all(r.outcome is Outcome.WRITTEN for r in results)  # each written once, none failed
    listed = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {k + ".json" for k in keys} <= listed
    assert not [k for k in listed if k.endswith(".error.json")]
