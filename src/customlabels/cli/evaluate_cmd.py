"""``customlabels evaluate``, ``compare`` and ``visualize`` (evaluation area).

Thin commands: parse, call one library function, render. Heavy imports (ONNX Runtime,
matplotlib) happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from customlabels.errors import InvalidParameterError


def _buckets(values: list[str] | None) -> dict[str, Path] | None:
    """``["bucket=folder", ...]`` → ``{bucket: Path(folder)}``."""
    if not values:
        return None
    out: dict[str, Path] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise InvalidParameterError(f"--bucket-map: expected NAME=FOLDER, got {value!r}")
        out[name] = Path(folder)
    return out


# Options shared by evaluate and compare.
TestManifest = Annotated[Path, typer.Argument(help="Ground Truth test manifest.")]
Bootstrap = Annotated[int, typer.Option("--bootstrap", min=10, help="Bootstrap resamples.")]
Seed = Annotated[int, typer.Option("--seed", help="Bootstrap seed.")]
Threads = Annotated[int, typer.Option("--threads", min=1, help="ONNX Runtime threads.")]
BucketMap = Annotated[
    list[str] | None,
    typer.Option(
        "--bucket-map", help="Map s3://NAME/... refs to a local FOLDER (NAME=FOLDER, repeatable)."
    ),
]


def evaluate(
    model_dir: Annotated[
        Path, typer.Argument(help="Model version folder (model.json, model.onnx).")
    ],
    test_manifest: TestManifest,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder [MODEL_DIR/evaluation].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print EvaluationSummary.json.")] = False,
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
    threads: Threads = 1,
    bucket: BucketMap = None,
    max_images: Annotated[
        int, typer.Option("--max-images", min=0, help="Images in the gallery.")
    ] = 30,
    attribution: Annotated[
        str | None, typer.Option("--attribution", help="Credit for images.")
    ] = None,
    update_card: Annotated[
        bool,
        typer.Option("--update-card/--no-update-card", help="Store metrics.test in model.json."),
    ] = True,
) -> None:
    """Evaluate a model on a test manifest: summary, evaluation manifest, plots, report.html."""
    from customlabels.evaluation.outputs import evaluate_model
    from customlabels.evaluation.summary import format_table

    result = evaluate_model(
        model_dir,
        test_manifest,
        out,
        update_card=update_card,
        n_boot=bootstrap,
        seed=seed,
        threads=threads,
        max_images=max_images,
        attribution=attribution,
        bucket_map=_buckets(bucket),
    )
    if as_json:
        typer.echo(json.dumps(result.summary, indent=2))
        return
    typer.echo(format_table(result.summary))
    typer.echo(f"written: {result.files['summary'].parent}")


def compare(
    model_a: Annotated[Path, typer.Argument(help="Model version A (the baseline).")],
    model_b: Annotated[Path, typer.Argument(help="Model version B.")],
    test_manifest: TestManifest,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder [MODEL_B/evaluation/compare-<A folder name>]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
    threads: Threads = 1,
    bucket: BucketMap = None,
) -> None:
    """Compare two model versions on the same test set (paired bootstrap of the F1 difference)."""
    from customlabels.evaluation.compare import compare_models, format_comparison

    out_dir = out if out is not None else model_b / "evaluation" / f"compare-{model_a.name}"
    result = compare_models(
        model_a,
        model_b,
        test_manifest,
        out_dir,
        n_boot=bootstrap,
        seed=seed,
        threads=threads,
        bucket_map=_buckets(bucket),
    )
    if as_json:
        typer.echo(json.dumps(result.summary, indent=2))
        return
    typer.echo(format_comparison(result.summary))
    typer.echo(f"written: {out_dir}")


def visualize(
    model_dir: Annotated[Path, typer.Argument(help="Model version folder.")],
    images: Annotated[list[Path], typer.Argument(help="Image files (PNG or JPEG).")],
    min_confidence: Annotated[
        str | None,
        typer.Option(
            "--min-confidence",
            help="0–100; several comma-separated values are drawn side by side (e.g. 99.4,90). "
            "Default: each label's assumed threshold.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder [MODEL_DIR/visualize].")
    ] = None,
    threads: Threads = 1,
) -> None:
    """Draw a model's detections (box, label, confidence) on images."""
    from customlabels.evaluation.visualize import parse_min_confidences, visualize

    out_dir = out if out is not None else model_dir / "visualize"
    for path in visualize(
        model_dir, images, parse_min_confidences(min_confidence), out_dir, threads=threads
    ):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add ``evaluate``, ``compare`` and ``visualize`` to ``app``."""
    app.command("evaluate")(evaluate)
    app.command("compare")(compare)
    app.command("visualize")(visualize)
