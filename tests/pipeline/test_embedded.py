"""The embedded pipeline end to end: real model, real BCCD images, real worker processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from customlabels.pipeline.embedded import EmbeddedConfig, RunSummary, run_embedded
from customlabels.pipeline.job import JobStatus
from customlabels.pipeline.sqlite_queue import QueueConfig, SqliteJobQueue
from customlabels.pipeline.worker import WorkerOptions

from .support import wait_for

PREFIX = "test_images/"


class WriteCounter:
    """How many times each result was written, seen from another process (inotify renames)."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("write_counter.py")), str(root)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError("write counter did not start")
        self._counts: Counter[str] | None = None

    @property
    def counts(self) -> Counter[str]:
        if self._counts is None:
            time.sleep(0.5)  # let the last events arrive
            self.proc.terminate()
            out, _ = self.proc.communicate(timeout=10)
            self._counts = Counter(line for line in out.splitlines() if line)
        return self._counts


@pytest.fixture()
def bucket(tmp_path: Path) -> Path:
    path = tmp_path / "bucket"
    (path / PREFIX).mkdir(parents=True)
    return path


@pytest.fixture()
def writes(bucket: Path) -> Iterator[WriteCounter]:
    counter = WriteCounter(bucket)
    yield counter
    if counter.proc.poll() is None:
        counter.proc.kill()
        counter.proc.wait(timeout=5)


class Running:
    def __init__(self, config: EmbeddedConfig) -> None:
        self.config = config
        self.stop = threading.Event()
        self.summary: RunSummary | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.summary = run_embedded(self.config, self.stop)

    def finish(self, timeout_s: float = 60) -> RunSummary:
        self.stop.set()
        self.thread.join(timeout=timeout_s)
        assert self.summary is not None, "pipeline did not stop"
        return self.summary


def _config(bucket: Path, model_dir: Path, **kw: object) -> EmbeddedConfig:
    defaults: dict[str, object] = {"settle_s": 0.3, "rescan_s": 2.0, "poll_s": 0.05}
    defaults.update(kw)
    return EmbeddedConfig(bucket=bucket, prefix=PREFIX, model_dir=model_dir, **defaults)  # type: ignore[arg-type]


def _results(bucket: Path) -> list[str]:
    return sorted(
        p.relative_to(bucket).as_posix()
        for p in bucket.rglob("*.json")
        if not p.name.endswith(".error.json") and ".customlabels-pipeline" not in p.parts
    )


def test_200_images_dropped_at_once_get_200_results_each_written_once(
    bucket: Path, model_dir: Path, bccd_images: list[Path], writes: WriteCounter
) -> None:
    run = Running(_config(bucket, model_dir, workers=2))
    try:
        time.sleep(0.5)
        keys = []
        for i, src in enumerate(bccd_images[:200]):
            key = f"{PREFIX}{'batch/' if i % 2 else ''}{src.name}"
            shutil.copy(src, bucket / key) if i % 2 == 0 else _copy_nested(src, bucket / key)
            keys.append(key)
        wait_for(lambda: len(_results(bucket)) >= 200, 300, "200 results", interval_s=0.5)
        time.sleep(2.5)  # a periodic rescan and any late events: nothing more may happen
    finally:
        summary = run.finish()
    assert _results(bucket) == sorted(k + ".json" for k in keys)
    assert writes.counts == Counter({k + ".json": 1 for k in keys})  # none twice, none missing
    queue = SqliteJobQueue(_config(bucket, model_dir).queue_path)
    jobs = queue.jobs()
    assert sorted(j.key for j in jobs) == sorted(keys)  # results never became jobs
    assert all(j.status is JobStatus.DONE and j.attempts == 1 for j in jobs)
    assert summary.counts["DONE"] == 200 and summary.restarts == 0
    doc = json.loads((bucket / (keys[0] + ".json")).read_text())
    assert doc["Image"]["Name"] == keys[0] and "CustomLabels" in doc


def _copy_nested(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest)


def test_odd_keys_bad_images_and_keys_outside_the_prefix(
    bucket: Path, model_dir: Path, bccd_images: list[Path], writes: WriteCounter
) -> None:
    good = [
        f"{PREFIX}with space.jpg",
        f"{PREFIX}ünïcödé/猫.jpg",
        f"{PREFIX}literal%20percent+plus.jpg",
        f"{PREFIX}a/b/c/deep.jpg",
    ]
    bad = {
        f"{PREFIX}truncated.jpg": (
            bccd_images[5].read_bytes()[:4000],
            "InvalidImageFormatException",
        ),
        f"{PREFIX}not an image.jpg": (b"hello, not a JPEG\n", "InvalidImageFormatException"),
        f"{PREFIX}huge.jpg": (
            b"\xff\xd8\xff" + b"\0" * (15 * 1024 * 1024 + 1),
            "ImageTooLargeException",
        ),
    }
    outside = ["other/x.jpg", "test_imagesX.jpg", f"{PREFIX}.hidden.jpg"]
    # half of them are there before the start (found by the start-up rescan), half arrive later
    for key in good[:2] + outside:
        _copy_nested(bccd_images[0], bucket / key)
    run = Running(_config(bucket, model_dir, workers=1))
    try:
        for i, key in enumerate(good[2:]):
            _copy_nested(bccd_images[i + 1], bucket / key)
        for key, (data, _) in bad.items():
            (bucket / key).write_bytes(data)
        wait_for(
            lambda: (
                len(_results(bucket)) >= len(good)
                and len(list(bucket.rglob("*.error.json"))) >= len(bad)
            ),
            120,
            "results and error files",
        )
        time.sleep(2.5)
    finally:
        run.finish()
    assert _results(bucket) == sorted(k + ".json" for k in good)
    for key, (_, aws_type) in bad.items():
        err = json.loads((bucket / (key + ".error.json")).read_text())
        assert err["Error"]["__type"] == aws_type, key
    for key in outside:
        assert not (bucket / (key + ".json")).exists()
    queue = SqliteJobQueue(_config(bucket, model_dir).queue_path)
    assert sorted(j.key for j in queue.jobs()) == sorted(good + list(bad))
    assert {j.key for j in queue.jobs(JobStatus.FAILED)} == set(bad)
    assert all(n == 1 for n in writes.counts.values()) and len(writes.counts) == len(good) + len(
        bad
    )


def test_worker_killed_mid_job_has_its_job_redone_and_written_once(
    bucket: Path, model_dir: Path, bccd_images: list[Path], writes: WriteCounter
) -> None:
    keys = [f"{PREFIX}{p.name}" for p in bccd_images[:4]]
    for key, src in zip(keys, bccd_images, strict=False):
        shutil.copy(src, bucket / key)
    config = _config(
        bucket,
        model_dir,
        workers=1,
        options=WorkerOptions(delay_s=1.0),
        queue=QueueConfig(lease_s=60),
    )
    run = Running(config)
    queue = SqliteJobQueue(config.queue_path)
    try:
        job = wait_for(
            lambda: next(iter(queue.jobs(JobStatus.IN_PROGRESS)), None), 60, "a job in flight"
        )
        pid = int(job.worker.rsplit(":", 1)[1])
        time.sleep(0.3)  # inside the worker's delay: detecting, nothing written yet
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: len(_results(bucket)) == 4, 120, "4 results")
    finally:
        summary = run.finish()
    assert summary.restarts == 1
    killed = queue.get(job.key)
    assert killed is not None and killed.status is JobStatus.DONE and killed.attempts == 2
    assert writes.counts == Counter({k + ".json": 1 for k in keys})


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "customlabels.cli.main", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: kill the supervisor and its workers
    )


def test_whole_pipeline_killed_and_restarted_finishes_every_image(
    bucket: Path, model_dir: Path, bccd_images: list[Path], writes: WriteCounter
) -> None:
    keys = [f"{PREFIX}{p.name}" for p in bccd_images[:12]]
    for key, src in zip(keys, bccd_images, strict=False):
        shutil.copy(src, bucket / key)
    common = [
        "--bucket",
        str(bucket),
        "--prefix",
        PREFIX,
        "--model",
        str(model_dir),
        "--settle",
        "0.2",
    ]
    slow = {"CUSTOMLABELS_PIPELINE_DELAY_S": "0.4"}
    first = _cli("pipeline", "run", *common, "--workers", "2", env=slow)
    queue_path = bucket / ".customlabels-pipeline" / "queue.sqlite3"
    try:
        wait_for(lambda: len(_results(bucket)) >= 2, 120, "the first results")
        wait_for(
            lambda: SqliteJobQueue(queue_path).stats().counts[JobStatus.IN_PROGRESS] > 0,
            30,
            "jobs in flight",
        )
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # supervisor and workers at once, no clean-up
        first.communicate(timeout=30)
    assert len(_results(bucket)) < len(keys)
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "customlabels.cli.main",
            "pipeline",
            "status",
            "--bucket",
            str(bucket),
            "--json",
        ],
        capture_output=True,
        check=True,
    )
    waiting = json.loads(status.stdout)
    assert waiting["counts"]["QUEUED"] + waiting["counts"]["IN_PROGRESS"] > 0
    second = _cli("pipeline", "run", *common, "--workers", "1", "--once")
    try:
        out, err = second.communicate(timeout=180)
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
            second.communicate(timeout=30)
    assert second.returncode == 0, err.decode()[-3000:]
    assert json.loads(out.decode().strip().splitlines()[-1])["counts"]["DONE"] == len(keys)
    assert _results(bucket) == sorted(k + ".json" for k in keys)
    assert writes.counts == Counter({k + ".json": 1 for k in keys})
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "customlabels.cli.main",
            "pipeline",
            "status",
            "--bucket",
            str(bucket),
        ],
        capture_output=True,
        check=True,
    )
    assert "queued: 0  in progress: 0  done: 12  failed: 0" in status.stdout.decode()
