"""int8 against float32: stored model folders quantized as `customlabels export --int8` does.

    .venv/bin/python bench/int8.py MODEL_DIR [MODEL_DIR ...] [--manifest MANIFEST]
        [--bucket-map BUCKET=DIR] [--calibration-images 100] [--runs 30] [--threads 2]
        [--label bee] [--out bench/results/int8.md]

Each ``MODEL_DIR`` is a float32 model folder whose ``model.json`` lists its train and test
images; ``--manifest`` is a Ground Truth manifest holding them (default: the shared set named by
the folder, see ``stored_models.py``). Per model:

- the int8 model: static quantization (QDQ, per-channel 7-bit int8 weights, uint8 activations)
  calibrated on ``--calibration-images`` images of the model's training split
  (:func:`customlabels.service.int8.export_int8`, the export option itself);
- latency: ONNX Runtime, ``--threads`` intra-op threads, ``session.run`` on one test image
  preprocessed at the model's input size, fp32 and int8 runs interleaved (so that both see the
  same machine load), median of ``--runs`` after 3 warm-ups; ms and ms per 0.1 MP of input;
- quality on the model's test split, each model at the card's thresholds, through
  ``customlabels compare`` (:func:`customlabels.evaluation.compare.compare_models`): per-label
  F1 and AP@0.5, and the paired-bootstrap interval of F1(int8) − F1(fp32).

The verdict is on ``--label`` (default ``bee``; the overall micro F1 where the model has no such
label): int8 may become the edge default when its F1 drops by less than 0.01. Results: printed,
and written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from customlabels.core.model_card import ModelCard
from customlabels.core.uris import is_s3_uri, s3_bucket_of
from customlabels.evaluation.compare import compare_models
from customlabels.evaluation.run import open_image
from customlabels.formats.groundtruth import load_ground_truth
from customlabels.formats.refs import parse_bucket_map
from customlabels.inference.predictor import Predictor
from customlabels.inference.preprocess import preprocess
from customlabels.service.int8 import DEFAULT_CALIBRATION_IMAGES, export_int8
from stored_models import REPO, dataset_manifest

RESULTS = REPO / "bench" / "results" / "int8.md"
WARMUP = 3
#: The issue's bar: int8 becomes the edge default only if F1 drops by less than this.
MAX_F1_DROP = 0.01


def split_manifest(manifest: Path, refs: set[str], out: Path) -> Path:
    """The lines of ``manifest`` whose image is in ``refs`` (the model's test split)."""
    lines = [
        line
        for line in manifest.read_text().splitlines()
        if line.strip() and json.loads(line).get("source-ref") in refs
    ]
    if not lines:
        raise SystemExit(f"{manifest}: none of the model's {len(refs)} test images")
    out.write_text("\n".join(lines) + "\n")
    return out


def moved_bucket_map(manifest: Path, refs: set[str], given: dict[str, Path]) -> dict[str, Path]:
    """``given`` plus each other bucket of ``refs`` mapped to ``manifest``'s folder: where the
    refs resolved from the original manifest, since the filtered copy lies elsewhere."""
    out = dict(given)
    for ref in refs:
        if not is_s3_uri(ref):
            raise SystemExit(f"{ref}: a relative ref; this bench needs s3:// refs")
        bucket = s3_bucket_of(ref)
        if bucket and bucket not in out:
            out[bucket] = manifest.parent
    return out


def latency(fp32: Path, int8: Path, image: Any, runs: int, threads: int) -> dict[str, float]:
    """Median ``session.run`` seconds of each model on ``image``, runs interleaved."""
    a, b = Predictor.load(fp32, threads=threads), Predictor.load(int8, threads=threads)
    tensor = preprocess(image, a.card.input)[0][None]
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for i in range(WARMUP + runs):
        for name, predictor in (("fp32", a), ("int8", b)):
            start = time.perf_counter()
            predictor.raw(tensor)
            if i >= WARMUP:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_model(folder: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Quantize, time and score one model folder; returns a row of the table."""
    manifest = args.manifest or dataset_manifest(folder)
    buckets = parse_bucket_map(args.bucket_map)
    card = ModelCard.load(folder)
    refs = set(card.dataset["images"]["test"])
    int8 = work / f"{folder.name}-int8"
    start = time.perf_counter()
    export_int8(
        folder,
        int8,
        calibration_manifest=manifest,
        calibration_count=args.calibration_images,
        bucket_map=buckets,
    )
    export_s = time.perf_counter() - start
    calibrated = ModelCard.load(int8).quantization["calibration"]["images"]

    tests = split_manifest(manifest, refs, work / f"{folder.name}-test.manifest")
    test_buckets = moved_bucket_map(manifest, refs, buckets)
    first = load_ground_truth(tests, bucket_map=test_buckets).images[0]
    seconds = latency(folder, int8, open_image(first), args.runs, args.threads)
    compared = compare_models(
        folder, int8, tests, n_boot=1000, threads=args.threads, bucket_map=test_buckets
    ).summary
    fp32_m, int8_m = compared["Models"]
    diff = compared["F1Difference"]
    label = args.label if args.label in compared["CommonLabels"] else None
    verdict_diff = diff["Labels"][label] if label else diff["Overall"]
    mp = card.input.width * card.input.height / 1e5
    return {
        "model": folder.name,
        "input": f"{card.input.width}×{card.input.height}",
        "mp": mp,
        "ms": {k: v * 1000 for k, v in seconds.items()},
        "mb": {
            "fp32": fp32_m["ModelSizeBytes"] / 1e6,
            "int8": int8_m["ModelSizeBytes"] / 1e6,
        },
        "export_s": export_s,
        "calibrated": calibrated,
        "test_images": compared["NumberOfTestingImages"],
        "labels": compared["CommonLabels"],
        "fp32": fp32_m,
        "int8": int8_m,
        "diff": diff,
        "verdict_on": label or "overall (micro)",
        "verdict_diff": verdict_diff,
    }


def _f(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def format_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The Markdown tables: speed, quality per label, verdicts."""
    lines = [
        "| model | input | fp32 ms | int8 ms | fp32 ms/0.1 MP | int8 ms/0.1 MP | int8 speed-up "
        "| size fp32 → int8 MB | export s (calibration images) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms = r["ms"]
        lines.append(
            f"| {r['model']} | {r['input']} | {ms['fp32']:.1f} | {ms['int8']:.1f} "
            f"| {ms['fp32'] / r['mp']:.2f} | {ms['int8'] / r['mp']:.2f} "
            f"| {ms['fp32'] / ms['int8']:.2f}× | {r['mb']['fp32']:.1f} → {r['mb']['int8']:.1f} "
            f"| {r['export_s']:.0f} ({r['calibrated']}) |"
        )
    lines += [
        "",
        "| model | label | test instances | F1 fp32 | F1 int8 | F1 int8 − fp32 [95% CI] "
        "| AP@0.5 fp32 | AP@0.5 int8 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r["fp32"], r["int8"]
        for label in [*r["labels"], None]:
            la = a["Labels"][label] if label else a
            lb = b["Labels"][label] if label else b
            d = r["diff"]["Labels"][label] if label else r["diff"]["Overall"]
            lo, hi = d["interval"]
            n = la["NumberOfTestingInstances"] if label else ""
            lines.append(
                f"| {r['model']} | {label or 'overall (micro)'} | {n} | {_f(la['F1Score'])} "
                f"| {_f(lb['F1Score'])} | {_f(d['f1_difference'])} [{_f(lo)}, {_f(hi)}] "
                f"| {_f(la.get('AP50') if label else la['mAP50'])} "
                f"| {_f(lb.get('AP50') if label else lb['mAP50'])} |"
            )
    lines.append("")
    for r in rows:
        d = r["verdict_diff"]["f1_difference"]
        ok = d is not None and d > -MAX_F1_DROP
        lines.append(
            f"- {r['model']}: F1 change on {r['verdict_on']} {_f(d)} over {r['test_images']} "
            f"test images → int8 {'meets' if ok else 'fails'} the bar (drop < {MAX_F1_DROP})."
        )
    return lines


def _vnni() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    return "yes" if "vnni" in flags else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--manifest", type=Path, default=None)
    parser.add_argument("--bucket-map", action="append", default=None)
    parser.add_argument("--calibration-images", type=int, default=DEFAULT_CALIBRATION_IMAGES)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", default="bee")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.runs < 30:
        parser.error(f"--runs: expected ≥ 30 (medians of fewer are noise), got {args.runs}")
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        for folder in args.models:
            rows.append(bench_model(folder, args, Path(tmp)))
            print("\n".join(format_rows(rows[-1:])), flush=True)
    load_after = os.getloadavg()
    head = [
        "# int8 (static, QDQ) against float32",
        "",
        f"`bench/int8.py`, {datetime.now(UTC):%Y-%m-%d}: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
        f"(VNNI: {_vnni()}), load average {load_before[0]:.1f} before"
        f" and {load_after[0]:.1f} after; ONNX Runtime {args.threads} intra-op threads, median of"
        f" {args.runs} runs (fp32 and int8 interleaved) on one test image at the model's input "
        f"size. Quality on each model's test split at the card's thresholds; the interval is a "
        f"paired bootstrap over the test images (1000 resamples). Calibration: "
        f"{args.calibration_images} images at most of the model's training split.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join([*head, *format_rows(rows)]) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
