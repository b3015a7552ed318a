"""``customlabels train`` and ``customlabels detect``.

``detect`` imports only the inference package (ONNX Runtime + numpy): never torch.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from customlabels.errors import InvalidParameterError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


def parse_duration(text: str) -> float:
    """``"15m"``, ``"900"``, ``"900s"``, ``"1.5h"`` -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise InvalidParameterError(
            f"--time-budget: expected a duration like 900, 900s, 15m or 1h, got {text!r}"
        )
    value, unit = float(match.group(1)), match.group(2) or "s"
    seconds = value * {"s": 1, "m": 60, "h": 3600}[unit]
    if seconds <= 0:
        raise InvalidParameterError(f"--time-budget: expected a positive duration, got {text!r}")
    return seconds


def train(
    manifest: Annotated[Path, typer.Argument(help="Ground Truth manifest of the training images.")],
    out: Annotated[Path, typer.Option("--out", help="Model version folder to write.")],
    test: Annotated[
        Path | None,
        typer.Option(help="Test manifest (default: a group-aware 20% split of MANIFEST)."),
    ] = None,
    time_budget: Annotated[
        str | None, typer.Option(help="Wall-clock budget for the whole run: 900, 15m, 1h.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="config.yaml with any knob changed (docs/training.md).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
) -> None:
    """Train a detector (boxes) or classifier (image labels) into a model version folder."""
    import logging

    from customlabels.training import train as run_training

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    budget = parse_duration(time_budget) if time_budget else None
    folder = run_training(
        manifest,
        out,
        test_manifest=test,
        time_budget_s=budget,
        config=config,
        seed=seed,
        resume=resume,
        device=device,
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


def detect(
    model_dir: Annotated[Path, typer.Argument(help="Model folder (model.json + model.onnx).")],
    images: Annotated[list[Path], typer.Argument(help="JPEG/PNG files.")],
    min_confidence: Annotated[
        float | None, typer.Option(help="0–100; default: each label's assumed threshold.")
    ] = None,
    max_results: Annotated[int | None, typer.Option(help="At most N labels per image.")] = None,
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads.")] = 1,
) -> None:
    """Print one DetectCustomLabels response per image (JSON Lines, in order, with "Image")."""
    from customlabels.errors import CustomLabelsError
    from customlabels.inference.detect import detect_bytes
    from customlabels.inference.predictor import Predictor
    from customlabels.inference.response import check_request_limits
    from customlabels.io.images import read_image_bytes

    check_request_limits(min_confidence, max_results)
    predictor = Predictor.load(model_dir, threads=threads)
    failed = 0
    for path in images:
        try:
            response = detect_bytes(
                predictor,
                read_image_bytes(path),
                name=str(path),
                min_confidence=min_confidence,
                max_results=max_results,
            )
        except CustomLabelsError as exc:
            # One bad image does not stop the others: its line carries the service's error.
            failed += 1
            response = {"Error": {"Code": exc.aws_type, "Message": exc.message}}
        typer.echo(json.dumps({"Image": str(path), **response}))
    if failed:
        sys.exit(1)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``detect`` to ``app``."""
    app.command("train")(train)
    app.command("detect")(detect)
