"""``customlabels train`` and ``customlabels detect``.

``detect`` imports only the inference package (ONNX Runtime + numpy): never torch.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from customlabels.core.durations import DEFAULT_TIME_BUDGET_S, parse_duration
from customlabels.errors import InvalidParameterError


def train(
    manifest: Annotated[Path, typer.Argument(help="Ground Truth manifest of the training images.")],
    out: Annotated[Path, typer.Option("--out", help="Model version folder to write.")],
    test: Annotated[
        Path | None,
        typer.Option(help="Test manifest (default: a group-aware 20% split of MANIFEST)."),
    ] = None,
    time_budget: Annotated[
        str | None,
        typer.Option(
            help="Wall-clock budget for the whole run: 900, 15m, 1h (default "
            f"{DEFAULT_TIME_BUDGET_S / 60:g}m)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="config.yaml with any knob changed (docs/training.md).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    bucket_map: Annotated[
        list[str] | None,
        typer.Option(
            "--bucket-map",
            help="BUCKET=DIR: resolve s3://BUCKET/KEY to DIR/KEY (repeatable; default: KEY "
            "under the manifest's folder).",
        ),
    ] = None,
    s3_endpoint_url: Annotated[
        str | None,
        typer.Option("--s3-endpoint-url", help="S3-compatible store to read unmapped buckets."),
    ] = None,
) -> None:
    """Train a detector (boxes) or classifier (image labels) into a model version folder."""
    import logging

    from customlabels.formats.refs import parse_bucket_map
    from customlabels.storage.s3 import S3Fetch
    from customlabels.training import train as run_training

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    budget = parse_duration(time_budget, "--time-budget") if time_budget else None
    folder = run_training(
        manifest,
        out,
        test_manifest=test,
        time_budget_s=budget,
        config=config,
        seed=seed,
        resume=resume,
        device=device,
        bucket_map=parse_bucket_map(bucket_map) if bucket_map else None,
        fetch=S3Fetch(s3_endpoint_url) if s3_endpoint_url else None,
    )
    card = json.loads((folder / "model.json").read_text())
    test_metrics = card.get("metrics", {}).get("test", {})
    typer.echo(f"model: {folder}")
    for name, m in test_metrics.get("labels", {}).items():
        typer.echo(
            f"  {name:>12}: test F1 {m.get('f1', float('nan')):.3f} "
            f"(P {m.get('precision', float('nan')):.3f} / R {m.get('recall', float('nan')):.3f}) "
            f"AP@0.5 {m.get('ap50', float('nan')):.3f} at threshold {m.get('threshold', 0):.3f}"
        )
    if test_metrics:
        typer.echo(f"  test mAP@0.5 {test_metrics.get('map50', float('nan')):.3f}")
    _print_confidence_and_data(card)


def _print_confidence_and_data(card: dict[str, Any]) -> None:
    """Steps and time, the calibrated thresholds (and which fell back), the data advice."""
    from customlabels.datasets.advice import DataAdvice

    t = card.get("training", {})
    typer.echo(f"  {t.get('steps')} steps in {t.get('seconds')} s ({t.get('threads')} threads)")
    cal = card.get("calibration") or {}
    evidence = cal.get("evidence", {})
    if cal:
        ece = cal.get("validation_ece", {})
        raw, calibrated = (ece.get(k) for k in ("raw", "calibrated_in_sample"))
        typer.echo(
            "  confidence calibrated on validation (P(true positive)): ECE "
            f"{'—' if raw is None else f'{raw:.3f}'} raw -> "
            f"{'—' if calibrated is None else f'{calibrated:.3f}'} calibrated (in sample)"
        )
    for name, thr in card.get("thresholds", {}).items():
        source = evidence.get(name, {}).get("threshold", "validation")
        typer.echo(f"  threshold {name}: {100 * thr:.0f} ({source})")
    advice = card.get("dataset", {}).get("advice")
    if advice:
        typer.echo(DataAdvice.from_dict(advice).format_table())


def detect(
    model: Annotated[
        str,
        typer.Argument(
            help="Model folder or exported bundle (model.json + model.onnx), or a model version "
            "ARN (looked up in --home, or detected by the server at --endpoint)."
        ),
    ],
    images: Annotated[list[Path], typer.Argument(help="JPEG/PNG files.")],
    min_confidence: Annotated[
        float | None, typer.Option(help="0–100; default: each label's assumed threshold.")
    ] = None,
    max_results: Annotated[int | None, typer.Option(help="At most N labels per image.")] = None,
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads.")] = 1,
    raw_confidence: Annotated[
        bool,
        typer.Option(
            "--raw-confidence",
            help="Add each label's RawConfidence (the model's uncalibrated score, 0–100).",
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option(
            envvar="CUSTOMLABELS_ENDPOINT", help="A running `customlabels serve` (with an ARN)."
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(envvar="CUSTOMLABELS_HOME", help="Home folder whose catalog knows ARNs."),
    ] = None,
) -> None:
    """Print one DetectCustomLabels response per image (JSON Lines, in order, with "Image")."""
    from customlabels.errors import CustomLabelsError
    from customlabels.inference.response import check_request_limits
    from customlabels.io.images import read_image_bytes

    check_request_limits(min_confidence, max_results)
    if endpoint and raw_confidence:
        raise InvalidParameterError("--raw-confidence: only for a local model (not --endpoint)")
    run = (
        _remote_detector(model, endpoint)
        if endpoint
        else _local_detector(model, home, threads, raw_confidence)
    )
    failed = 0
    for path in images:
        try:
            response = run(read_image_bytes(path), str(path), min_confidence, max_results)
        except CustomLabelsError as exc:
            # One bad image does not stop the others: its line carries the service's error.
            failed += 1
            response = {"Error": {"Code": exc.aws_type, "Message": exc.message}}
        typer.echo(json.dumps({"Image": str(path), **response}))
    if failed:
        sys.exit(1)


Detector = Callable[[bytes, str, float | None, int | None], dict[str, Any]]


def _local_detector(model: str, home: Path | None, threads: int, raw: bool = False) -> Detector:
    """In this process with ONNX Runtime (a folder, a bundle, or an ARN of the local home)."""
    from customlabels.inference.detect import detect_bytes
    from customlabels.inference.predictor import Predictor

    if model.startswith("arn:"):
        from customlabels.service.resolve import resolve_model  # SQLAlchemy, never torch

        model_dir = resolve_model(model, home=home)
    else:
        model_dir = Path(model)
    predictor = Predictor.load(model_dir, threads=threads)

    def run(data: bytes, name: str, min_conf: float | None, max_res: int | None) -> dict[str, Any]:
        return detect_bytes(
            predictor, data, name=name, min_confidence=min_conf, max_results=max_res, raw=raw
        )

    return run


def _remote_detector(model: str, endpoint: str) -> Detector:
    """DetectCustomLabels on a running server (signed with the usual AWS credentials)."""
    from customlabels.service.remote import detect_remote, rekognition_client
    from customlabels.service.resolve import is_version_arn

    if not is_version_arn(model):
        raise InvalidParameterError(
            f"--endpoint: expected a model version ARN as MODEL, got {model!r}"
        )
    client = rekognition_client(endpoint)

    def run(data: bytes, name: str, min_conf: float | None, max_res: int | None) -> dict[str, Any]:
        return detect_remote(endpoint, model, data, min_conf, max_res, client=client)

    return run


def plan_budget(
    target_steps: Annotated[
        int, typer.Option("--target-steps", help="Detector training steps wanted.")
    ] = 600,
    threads: Annotated[
        int, typer.Option(help="Torch threads training will use (0: the idle cores, as train).")
    ] = 0,
    min_seconds: Annotated[int, typer.Option("--min-seconds")] = 300,
    max_seconds: Annotated[int, typer.Option("--max-seconds")] = 1200,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Measure this machine's detector step and size a time budget for --target-steps."""
    from customlabels.training.speed import plan_budget as plan

    p = plan(target_steps, threads, min_seconds, max_seconds)
    if as_json:
        typer.echo(json.dumps(p.to_dict()))
        return
    typer.echo(
        f"{p.threads} thread(s): {p.step_seconds:.3f} s per detector step -> budget "
        f"{p.budget_seconds} s for about {p.expected_steps} steps (wanted {p.target_steps})"
    )


def register(app: typer.Typer) -> None:
    """Add ``train``, ``detect`` and ``plan-budget`` to ``app``."""
    app.command("train")(train)
    app.command("detect")(detect)
    app.command("plan-budget")(plan_budget)
