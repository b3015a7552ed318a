"""Benchmark of the detection service (`customlabels serve`) with boto3's real client.

Measures, against a server started in a child process on 127.0.0.1:
- time from StartProjectVersion to RUNNING (median of several start/stop cycles);
- DetectCustomLabels latency p50/p95 over HTTP (boto3, SigV4, image bytes) against the same
  model called in-process (Predictor + detect_bytes, no HTTP), and their ratio;
- throughput with 1, 2 and 8 concurrent clients (MinInferenceUnits = --units).

The model is trained through the service itself (CreateProjectVersion on a BCCD subset, with
the training budget below) unless --model DIR names a model folder to import.

    .venv/bin/python bench/serve.py [--model DIR] [--requests 40] [--out bench/results/service.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from clients import rekognition_client

REPO = Path(__file__).resolve().parents[1]
BCCD = REPO.parent / "shared" / "datasets" / "bccd"
KEY, SECRET = "AKIDBENCH", "bench-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bucket(root: Path, n: int) -> list[str]:
    """Copy ``n`` BCCD images and their manifest into bucket ``bccd-demo``; return image keys."""
    bucket = root / "bccd-demo"
    lines = [line for line in (BCCD / "output.manifest").read_text().splitlines() if line][:n]
    keys = []
    for line in lines:
        key = json.loads(line)["source-ref"].removeprefix("s3://bccd-demo/")
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BCCD / key, bucket / key)
        keys.append(key)
    (bucket / "train.manifest").write_text("\n".join(lines) + "\n")
    (root / "out").mkdir()
    return keys


def _client(url: str) -> Any:
    return rekognition_client(url, KEY, SECRET, read_timeout=300, pool=16)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _wait_running(client: Any, project: str, version: str, units: int) -> float:
    started = time.perf_counter()
    client.start_project_version(ProjectVersionArn=version, MinInferenceUnits=units)
    while True:
        desc = client.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]
        status = next(d["Status"] for d in desc if d["ProjectVersionArn"] == version)
        if status == "RUNNING":
            return time.perf_counter() - started
        if status == "FAILED":
            raise RuntimeError(f"start failed: {desc}")
        time.sleep(0.01)


def _throughput(url: str, version: str, images: list[bytes], clients: int, seconds: float) -> float:
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        client = _client(url)
        n = 0
        while time.perf_counter() < stop:
            client.detect_custom_labels(
                ProjectVersionArn=version, Image={"Bytes": images[(i + n) % len(images)]}
            )
            n += 1
        done[i] = n

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder to import instead of training")
    parser.add_argument("--images", type=int, default=24, help="BCCD images in the bucket")
    parser.add_argument("--train-budget", default="60", help="training budget (seconds)")
    parser.add_argument("--requests", type=int, default=40, help="latency samples per path")
    parser.add_argument("--starts", type=int, default=5, help="start/stop cycles")
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs (median)")
    parser.add_argument("--units", type=int, default=2, help="MinInferenceUnits")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "service.md")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cl-bench-serve-"))
    keys = _bucket(tmp / "buckets", args.images)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CUSTOMLABELS_ACCESS_KEY_ID": KEY,
        "CUSTOMLABELS_SECRET_ACCESS_KEY": SECRET,
        "OMP_NUM_THREADS": "1",
    }
    home = tmp / "home"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "customlabels.cli.main",
            "serve",
            "--home",
            str(home),
            "--buckets",
            str(tmp / "buckets"),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        for _ in range(300):
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = _client(url)
        project = client.create_project(ProjectName="bench")["ProjectArn"]
        train_s = None
        if args.model:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "customlabels.cli.main",
                    "models",
                    "import",
                    "bench",
                    "v1",
                    str(args.model),
                    "--home",
                    str(home),
                ],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            version = client.describe_project_versions(ProjectArn=project)[
                "ProjectVersionDescriptions"
            ][0]["ProjectVersionArn"]
        else:
            client.create_dataset(
                ProjectArn=project,
                DatasetType="TRAIN",
                DatasetSource={
                    "GroundTruthManifest": {
                        "S3Object": {"Bucket": "bccd-demo", "Name": "train.manifest"}
                    }
                },
            )
            t0 = time.perf_counter()
            version = client.create_project_version(
                ProjectArn=project,
                VersionName="v1",
                OutputConfig={"S3Bucket": "out"},
                TestingData={"AutoCreate": True},
                Tags={"customlabels:time-budget": args.train_budget},
            )["ProjectVersionArn"]
            client.get_waiter("project_version_training_completed").wait(
                ProjectArn=project, WaiterConfig={"Delay": 2, "MaxAttempts": 600}
            )
            train_s = time.perf_counter() - t0
        model_dir = home / "models" / "bench" / "v1" / "model"

        starts = []
        for i in range(args.starts):
            starts.append(_wait_running(client, project, version, args.units))
            if i < args.starts - 1:
                client.stop_project_version(ProjectVersionArn=version)

        images = [(tmp / "buckets" / "bccd-demo" / k).read_bytes() for k in keys]
        for img in images[:3]:  # warm-up
            client.detect_custom_labels(ProjectVersionArn=version, Image={"Bytes": img})
        http_ms = []
        for i in range(args.requests):
            t0 = time.perf_counter()
            client.detect_custom_labels(
                ProjectVersionArn=version, Image={"Bytes": images[i % len(images)]}
            )
            http_ms.append((time.perf_counter() - t0) * 1000)

        from customlabels.inference.detect import detect_bytes
        from customlabels.inference.predictor import Predictor

        predictor = Predictor.load(model_dir, threads=1)
        for img in images[:3]:
            detect_bytes(predictor, img)
        local_ms = []
        for i in range(args.requests):
            t0 = time.perf_counter()
            detect_bytes(predictor, images[i % len(images)])
            local_ms.append((time.perf_counter() - t0) * 1000)

        rates = {
            n: statistics.median(
                _throughput(url, version, images, n, args.seconds) for _ in range(args.repeats)
            )
            for n in (1, 2, 8)
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)

    p50_http, p95_http = _pct(http_ms, 0.5), _pct(http_ms, 0.95)
    p50_local, p95_local = _pct(local_ms, 0.5), _pct(local_ms, 0.95)
    lines = [
        "# Detection service benchmark (`bench/serve.py`)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores **shared with four other "
        "engineers' jobs while measured (contended)**; numbers are indicative, compare ratios. "
        f"Server: `customlabels serve` in a child process on 127.0.0.1, MinInferenceUnits = "
        f"{args.units}, 1 ONNX Runtime thread per session; client: boto3 `rekognition` with SigV4. "
        f"Model: FCOS detector trained through CreateProjectVersion on {args.images} BCCD "
        f"images (640×480){'' if train_s is None else f' in {train_s:.0f} s wall'}; "
        "requests carry the JPEG bytes.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| StartProjectVersion → RUNNING, median of {len(starts)} | "
        f"{statistics.median(starts) * 1000:.0f} ms (min {min(starts) * 1000:.0f}, max "
        f"{max(starts) * 1000:.0f}) |",
        f"| DetectCustomLabels over HTTP, p50 / p95 ({args.requests} requests) | "
        f"{p50_http:.1f} / {p95_http:.1f} ms |",
        f"| same model in-process (`detect_bytes`), p50 / p95 | {p50_local:.1f} / "
        f"{p95_local:.1f} ms |",
        f"| HTTP / in-process ratio (p50) | {p50_http / p50_local:.2f}× |",
        *(
            f"| throughput, {n} concurrent client{'s' if n > 1 else ''} (median of "
            f"{args.repeats} × {args.seconds:g} s) | {rate:.1f} images/s |"
            for n, rate in rates.items()
        ),
        "",
        f"Run: `.venv/bin/python bench/serve.py` ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())}"
        " UTC).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
