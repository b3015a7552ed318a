"""Reliability under load: `customlabels serve` under 16 Locust clients of mixed DetectCustomLabels.

The mix (``bench/reliability_locustfile.py``): valid images (each answer compared with the
in-process answer), corrupt JPEGs, images over the byte limit, a wrong version ARN, unsigned
requests, and a second version that this script stops and starts again every few seconds
during the run (answered, or ResourceNotReadyException). Reported per run: requests, 5xx,
wrong answers, throughput and p50/p99 latency per kind, beside the in-process rate of the same
model (Predictor + detect_bytes, no HTTP, one thread); and the server's RSS sampled every
0.5 s across all the runs and read at rest after each run, with the verdict of the memory
criterion (:func:`flat_memory`: no growth over the second half of the runs).

    .venv/bin/python bench/reliability.py --model MODEL_DIR [--seconds 60] [--users 16] [--runs 6]

``--check`` runs once, writes no table, prints a JSON summary and exits 1 unless the run had
no 5xx, no wrong answer and no failed request (``tests/api/test_load.py`` runs it for 10 s).
``--probe FILE`` serves through ``bench/serve_probe.py`` and appends what the server's memory
is made of (malloc in use / free / mapped, live ONNX sessions, Python allocations with
``CL_PROBE_TRACEMALLOC=1``) before the first run and after each run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from clients import rekognition_client
from customlabels.pipeline.local_servers import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
BEES = REPO.parent / "shared" / "datasets" / "bees"
LOCUSTFILE = Path(__file__).with_name("reliability_locustfile.py")
PROBE = Path(__file__).with_name("serve_probe.py")
KEY, SECRET = "AKIDRELIABILITY", "reliability-secret"
KINDS = ["valid", "corrupt", "oversized", "wrong-arn", "unsigned", "stopped-mid-run"]
IDLE_CPU = 5.0  # % of one core: below this for a second, the server is at rest
FLAT_MIB = 32.0  # the memory criterion (see flat_memory)
# a line of the results file from which on the file is kept when the tables are written again
HISTORY_MARK = "<!-- earlier measurements: kept by bench/reliability.py -->"


def _client(url: str) -> Any:
    return rekognition_client(url, KEY, SECRET, read_timeout=120)


def _prepare_home(home: Path, model: Path) -> tuple[str, str, str]:
    """Import the model twice (v1 stays running, v2 is churned); return the project's and the
    two versions' ARNs."""
    from customlabels.service import ServiceSettings, open_context, projects, versions

    ctx = open_context(ServiceSettings(home=home), recover=False)
    try:
        project = projects.create_project(ctx, "load")["ProjectArn"]
        arns = [
            versions.import_model_version(ctx, project, name, model)["ProjectVersionArn"]
            for name in ("v1", "v2")
        ]
    finally:
        ctx.close()
    return project, arns[0], arns[1]


def _in_process(model: Path, image: bytes, n: int, max_bytes: int) -> tuple[dict[str, Any], float]:
    """The answer for ``image`` and the median seconds per detection, without HTTP."""
    from customlabels.inference.detect import detect_bytes
    from customlabels.inference.predictor import Predictor
    from customlabels.io.images import ImageLimits

    predictor = Predictor.load(model, threads=1)
    limits = ImageLimits(max_bytes=max_bytes, min_side=1)
    expected = detect_bytes(predictor, image, "Image.Bytes", limits=limits)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        detect_bytes(predictor, image, "Image.Bytes", limits=limits)
        times.append(time.perf_counter() - t0)
    return expected, statistics.median(times)


def _wait_status(client: Any, project: str, arn: str, want: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = client.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]
        if next(d["Status"] for d in desc if d["ProjectVersionArn"] == arn) == want:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{arn} not {want} after {timeout} s")


class _Churn(threading.Thread):
    """Stops the version and starts it again, until told to stop (counts the cycles)."""

    def __init__(self, url: str, project: str, arn: str) -> None:
        super().__init__(daemon=True)
        self.client, self.project, self.arn = _client(url), project, arn
        self.halt = threading.Event()
        self.cycles = 0

    def run(self) -> None:
        while not self.halt.wait(2.0):
            self.client.stop_project_version(ProjectVersionArn=self.arn)
            if self.halt.wait(1.5):
                break
            self.client.start_project_version(ProjectVersionArn=self.arn, MinInferenceUnits=1)
            _wait_status(self.client, self.project, self.arn, "RUNNING")
            self.cycles += 1
        if (
            self.client.describe_project_versions(ProjectArn=self.project, VersionNames=["v2"])[
                "ProjectVersionDescriptions"
            ][0]["Status"]
            != "RUNNING"
        ):
            self.client.start_project_version(ProjectVersionArn=self.arn, MinInferenceUnits=1)
            _wait_status(self.client, self.project, self.arn, "RUNNING")


class _Memory(threading.Thread):
    """Samples a process's resident memory every 0.5 s: ``(seconds, MiB)``."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.halt = threading.Event()
        self.samples: list[tuple[float, float]] = []

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.halt.wait(0.5):
            rss = self.process.memory_info().rss / 2**20
            self.samples.append((time.monotonic() - t0, rss))


def _slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over time, MiB per minute."""
    xs, ys = [s[0] for s in samples], [s[1] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def _locust(url: str, scenario: Path, users: int, seconds: int, prefix: Path) -> dict[str, Any]:
    """One headless Locust run; its stats and failures from Locust's CSV files."""
    env = {**os.environ, "RELIABILITY_SCENARIO": str(scenario)}
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    argv += ["-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", url]
    argv += ["--csv", str(prefix), "--only-summary", "--stop-timeout", "30", "--loglevel", "ERROR"]
    subprocess.run(argv, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv") as f:
        stats = {row["Name"]: row for row in csv.DictReader(f)}
    with open(f"{prefix}_failures.csv") as f:
        failures = list(csv.DictReader(f))
    count = {"5xx": 0, "wrong": 0, "other": 0}
    for row in failures:
        error, n = row["Error"], int(row["Occurrences"])
        key = "5xx" if "5xx:" in error else "wrong" if "wrong answer" in error else "other"
        count[key] += n
    return {
        "stats": stats,
        "failures": [(r["Name"], r["Error"][:160], int(r["Occurrences"])) for r in failures],
        "count": count,
    }


def _probe(out: Path | None, pid: int) -> None:
    """Have the probed server append one probe line to ``out`` (nothing without ``--probe``)."""
    if out is None:
        return
    lines = len(out.read_text().splitlines()) if out.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    wait_until(lambda: out.exists() and len(out.read_text().splitlines()) > lines, 120, "the probe")
    print(out.read_text().splitlines()[-1], flush=True)


def _at_rest(pid: int, timeout: float = 60) -> float:
    """The server's RSS (MiB) once it is idle: the requests Locust abandoned at the end of a run
    are still being served for a while, holding their buffers."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    while process.cpu_percent(interval=1.0) >= IDLE_CPU and time.monotonic() < deadline:
        pass
    rss: float = process.memory_info().rss / 2**20
    return rss


def flat_memory(at_rest: list[float]) -> tuple[float, bool]:
    """The memory criterion: the RSS at rest after each run, second half against first half.

    A plateau reached after warm-up is not a leak; a leak keeps rising, so it lifts both the
    lowest and the highest reading at rest. The reading itself has two states (glibc has, or
    has not yet, handed the last run's freed memory back: 600 or 790 MiB on the idle machine),
    so one reading against another confuses the states; the floor and the ceiling of the two
    halves do not: ``growth = max(max(b) - max(a), min(b) - min(a))`` for the first half ``a``
    and the second half ``b``, flat when ``growth < FLAT_MIB``. RSS sampled during a run is no
    measure of this: it swings by hundreds of MiB with the requests in flight.

    Returns:
        (growth in MiB, flat).
    """
    k = max(1, len(at_rest) // 2)
    a, b = at_rest[:k], at_rest[k:] or at_rest[-1:]
    growth = max(max(b) - max(a), min(b) - min(a))
    return growth, growth < FLAT_MIB


def _ms(row: dict[str, str], column: str) -> float:
    value = row.get(column) or "nan"
    return float("nan") if value == "N/A" else float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a model folder to serve")
    parser.add_argument("--image", type=Path, help="a JPEG to detect on (default: a bee frame)")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--units", type=int, default=2, help="MinInferenceUnits of the version")
    parser.add_argument("--check", action="store_true", help="one run, JSON verdict, no table")
    parser.add_argument(
        "--probe",
        type=Path,
        help="serve through bench/serve_probe.py and append its probe (JSON lines) to this file "
        "before the first run and after each run",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "reliability.md")
    args = parser.parse_args()
    runs = 1 if args.check else args.runs
    image_path = args.image or next(iter(sorted((BEES / "images").glob("*.jpg"))))
    image = image_path.read_bytes()
    max_image_bytes = 4 * 1024 * 1024

    tmp = Path(tempfile.mkdtemp(prefix="cl-reliability-"))
    home = tmp / "home"
    project, running, churned = _prepare_home(home, args.model)
    expected, in_process_s = _in_process(
        args.model, image, 5 if args.check else 30, max_image_bytes
    )
    scenario = tmp / "scenario.json"
    missing = running.replace("/version/v1/", "/version/nope/")
    scenario.write_text(
        json.dumps(
            {
                "key": KEY,
                "secret": SECRET,
                "running": running,
                "churned": churned,
                "missing": missing,
                "image": str(image_path),
                "expected": expected,
                "max_image_bytes": max_image_bytes,
            }
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CUSTOMLABELS_ACCESS_KEY_ID": KEY,
        "CUSTOMLABELS_SECRET_ACCESS_KEY": SECRET,
        "OMP_NUM_THREADS": "1",
    }
    serve = [sys.executable, "-m", "customlabels.cli.main", "serve", "--home", str(home)]
    if args.probe:
        env["CL_PROBE_OUT"] = str(args.probe)
        serve[1:3] = [str(PROBE)]
    serve += ["--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(serve, env=env)
    results: list[dict[str, Any]] = []
    memory = _Memory(server.pid)
    try:

        def up() -> bool:
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 180, "the server to answer")
        client = _client(url)
        client.start_project_version(ProjectVersionArn=running, MinInferenceUnits=args.units)
        client.start_project_version(ProjectVersionArn=churned, MinInferenceUnits=1)
        _wait_status(client, project, running, "RUNNING")
        _wait_status(client, project, churned, "RUNNING")
        memory.start()
        _probe(args.probe, server.pid)
        for n in range(runs):
            churn = _Churn(url, project, churned)
            churn.start()
            first = len(memory.samples)
            result = _locust(url, scenario, args.users, args.seconds, tmp / f"run{n}")
            churn.halt.set()
            churn.join()
            result["churn_cycles"] = churn.cycles
            result["rss"] = [rss for _, rss in memory.samples[first:]]
            result["rss_at_rest"] = _at_rest(server.pid)
            results.append(result)
            _probe(args.probe, server.pid)
    finally:
        memory.halt.set()
        server.terminate()
        server.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)

    if args.check:
        first = results[0]
        sent = {k: int(first["stats"][k]["Request Count"]) for k in KINDS if k in first["stats"]}
        verdict = {
            **first["count"],
            "sent": sent,
            "failures": first["failures"],
            "churn_cycles": first["churn_cycles"],
        }
        print(json.dumps(verdict))
        ok = not any(first["count"].values()) and set(sent) == set(KINDS)
        sys.exit(0 if ok else 1)
    _write(args, results, memory.samples, in_process_s)


def _write(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    samples: list[tuple[float, float]],
    in_process_s: float,
) -> None:
    agg = [r["stats"]["Aggregated"] for r in results]
    rps = statistics.median(float(a["Requests/s"]) for a in agg)
    valid = [r["stats"]["valid"] for r in results]
    valid_rps = statistics.median(float(v["Requests/s"]) for v in valid)
    in_rate = 1 / in_process_s
    lines = [
        "# Reliability under load",
        "",
        f"`bench/reliability.py --seconds {args.seconds} --users {args.users} --runs {args.runs}`"
        f" on {platform.node()} ({os.cpu_count()} cores, shared with other jobs: load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. One `customlabels serve` "
        f"process; the version under load has MinInferenceUnits={args.units} (1 ONNX thread "
        "each); Locust runs in another process on the same cores.",
        "",
        "## Answers",
        "",
        "| run | requests | 5xx | wrong answers | other failures | stop/start cycles of v2 |",
        "|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(results, 1):
        c = r["count"]
        total = r["stats"]["Aggregated"]["Request Count"]
        lines.append(
            f"| {n} | {total} | {c['5xx']} | {c['wrong']} | {c['other']} | {r['churn_cycles']} |"
        )
    failures = [f for r in results for f in r["failures"]]
    if failures:
        lines += ["", "Failures:", ""] + [f"- {k}: {e} ×{n}" for k, e, n in failures]
    lines += [
        "",
        "## Throughput and latency (median of the runs)",
        "",
        "| request | count per run | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for kind in [*KINDS, "Aggregated"]:
        rows = [r["stats"][kind] for r in results if kind in r["stats"]]
        if not rows:
            continue
        lines.append(
            f"| {kind} | {statistics.median(int(x['Request Count']) for x in rows):.0f} | "
            f"{statistics.median(float(x['Requests/s']) for x in rows):.1f} | "
            f"{statistics.median(_ms(x, '50%') for x in rows):.0f} | "
            f"{statistics.median(_ms(x, '99%') for x in rows):.0f} |"
        )
    lines += [
        "",
        f"In-process (Predictor + detect_bytes, one thread, no HTTP): "
        f"{in_process_s * 1000:.0f} ms per image = {in_rate:.1f} images/s. Valid detections "
        f"served under load: {valid_rps:.1f}/s = {valid_rps / in_rate:.2f}× the in-process "
        f"rate of one session ({args.units} sessions serve, on {os.cpu_count()} shared cores); "
        f"all requests: "
        f"{rps:.1f}/s.",
        "",
        "## Server memory (RSS of the server process, sampled every 0.5 s)",
        "",
        "The server tunes glibc's malloc itself (`customlabels.inference.allocator`: mmap "
        "threshold fixed at 1 MiB, 2 arenas), and a failed use case's exception comes back from "
        "the thread pool without a reference cycle (`customlabels.service.threads`). "
        "During a run the RSS swings with the requests in "
        "flight; a leak shows in the RSS *at rest*, read after each run once the server is "
        f"idle (under {IDLE_CPU:g}% CPU for 1 s: clients stopped, v2 loaded again). "
        "**Criterion**: "
        "memory is flat when neither the highest nor the lowest RSS at rest of the second half of "
        f"the runs exceeds that of the first half by {FLAT_MIB:g} MiB or more (a plateau after "
        "warm-up is not a leak; a leak lifts both).",
        "",
        "| run | at its start | median | max | slope, second half | at rest after the run |",
        "|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(results, 1):
        rss = r["rss"]
        half = [(i * 0.5, v) for i, v in enumerate(rss)][len(rss) // 2 :]
        lines.append(
            f"| {n} | {rss[0]:.0f} MiB | {statistics.median(rss):.0f} MiB | {max(rss):.0f} MiB | "
            f"{_slope(half):+.1f} MiB/min | {r['rss_at_rest']:.0f} MiB |"
        )
    growth, flat = flat_memory([r["rss_at_rest"] for r in results])
    k = max(1, len(results) // 2)
    lines += [
        "",
        f"Growth of the RSS at rest, runs {k + 1}–{len(results)} against runs 1–{k} (highest "
        f"and lowest): {growth:+.0f} MiB: **{'flat' if flat else 'NOT flat'}** "
        f"(criterion < {FLAT_MIB:g} MiB).",
        "",
        "RSS every 10 s over all runs (MiB): "
        + ", ".join(f"{rss:.0f}" for t, rss in samples if round(t * 2) % 20 == 0),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    old = args.out.read_text() if args.out.exists() else ""
    if HISTORY_MARK in old:
        text += "\n" + old[old.index(HISTORY_MARK) :]
    args.out.write_text(text)


if __name__ == "__main__":
    main()
