"""``customlabels dataset validate|stats|split|convert``: thin commands over the library."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # the library is imported inside the commands: `customlabels --help` stays fast
    from customlabels.formats.refs import Fetch
    from customlabels.formats.report import Issue, ValidationReport

dataset_app = typer.Typer(
    name="dataset",
    help="Import, check, describe, split and convert labelled datasets "
    "(formats: groundtruth, coco, voc, yolo, folders).",
    no_args_is_help=True,
)

_BUCKET_MAP_HELP = (
    "BUCKET=DIR: resolve s3://BUCKET/KEY to DIR/KEY (repeatable). Unmapped buckets resolve to "
    "KEY under the manifest's folder."
)
_ENDPOINT_HELP = "S3-compatible endpoint to download unmapped buckets from (boto3 credentials)."
BucketMapOpt = Annotated[list[str] | None, typer.Option("--bucket-map", help=_BUCKET_MAP_HELP)]
EndpointOpt = Annotated[str | None, typer.Option("--s3-endpoint-url", help=_ENDPOINT_HELP)]


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""
    app.add_typer(dataset_app, name="dataset")


# The format options these commands set, by the flag a user gives them with.
_FLAGS = {
    "bucket_map": "--bucket-map",
    "fetch": "--s3-endpoint-url",
    "images_dir": "--images-dir",
    "ref_prefix": "--ref-prefix",
}


def _check_flags(fmt: str, verb: str, options: dict[str, Any]) -> None:
    """Refuse, by its flag, an option given that format ``fmt`` does not ``verb`` with."""
    from customlabels.errors import InvalidParameterError
    from customlabels.formats.registry import option_names, unsupported_options

    unknown = unsupported_options(fmt, verb, options)
    if unknown:
        side = "--from" if verb == "load" else "--to"
        flags = [_FLAGS[k] for k in option_names(fmt, verb) if k in _FLAGS]
        raise InvalidParameterError(
            f"{side} {fmt} does not take {', '.join(_FLAGS[k] for k in unknown)}; "
            + (f"it takes {', '.join(flags)}" if flags else "it takes none of these options")
        )


def _bucket_map(items: list[str] | None) -> dict[str, Path]:
    from customlabels.formats.refs import parse_bucket_map

    return parse_bucket_map(items)


def _fetch(endpoint: str | None) -> Fetch | None:
    """``--s3-endpoint-url`` → what reads unmapped buckets; None leaves them to resolve under
    the manifest's folder."""
    from customlabels.storage.s3 import S3Fetch

    return S3Fetch(endpoint) if endpoint else None


def _print_issues(report: ValidationReport, limit: int) -> None:
    by_code: dict[tuple[str, str], list[Issue]] = defaultdict(list)
    for issue in report.issues:
        by_code[(issue.code, str(issue.severity))].append(issue)
    if not by_code:
        typer.echo("problems: none")
        return
    typer.echo("problems:")
    for (code, severity), issues in sorted(by_code.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        typer.echo(f"  {severity:<7} {code} ×{len(issues)}")
        for issue in issues[:limit]:
            where = f"line {issue.line}" if issue.line is not None else "manifest"
            field = f" [{issue.field}]" if issue.field else ""
            typer.echo(f"      {where}{field}: {issue.message}")
        if len(issues) > limit:
            typer.echo(f"      ... {len(issues) - limit} more (--show N to see more)")


def _print_report(report: ValidationReport, limit: int) -> None:
    typer.echo(f"{report.source}")
    use_case = report.use_case.value if report.use_case else "unknown use case"
    typer.echo(
        f"  {use_case}: {report.total_lines} lines, {report.valid_lines} valid, "
        f"{len(report.invalid_lines)} invalid, {len(report.ignored_lines)} ignored by the service"
    )
    if report.labels:
        width = max(len(n) for n in report.labels)
        typer.echo("labels:")
        for name, counts in report.labels.items():
            typer.echo(
                f"  {name:<{width}}  {counts['images']:>6} images  {counts['boxes']:>7} boxes"
            )
    _print_issues(report, limit)


@dataset_app.command("validate")
def validate(
    manifest: Annotated[Path, typer.Argument(help="Ground Truth manifest (JSON Lines).")],
    test: Annotated[
        Path | None, typer.Option("--test", help="Test manifest to check alongside.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the service-shaped manifest summary as JSON.")
    ] = False,
    bucket_map: BucketMapOpt = None,
    s3_endpoint_url: EndpointOpt = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Decode every image fully (slower).")
    ] = False,
    show: Annotated[int, typer.Option("--show", help="Problems shown per error code.")] = 5,
    fmt: Annotated[
        str, typer.Option("--from", help="Format of MANIFEST (groundtruth|coco|voc|yolo|folders).")
    ] = "groundtruth",
    images_dir: Annotated[
        Path | None, typer.Option("--images-dir", help="Image folder for coco/voc sources.")
    ] = None,
    annotated: Annotated[
        Path | None,
        typer.Option(
            "--annotated",
            help="Write MANIFEST's lines with their problems attached (an 'errors' list), as "
            "the service's validation manifest.",
        ),
    ] = None,
) -> None:
    """Check a manifest with the service's rules; exit 0 when it can be trained on, 1 if not."""
    from customlabels.datasets.validate import (
        ValidationConfig,
        annotated_lines,
        validate_manifest,
    )

    report = validate_manifest(
        manifest,
        test_path=test,
        bucket_map=_bucket_map(bucket_map),
        fetch=_fetch(s3_endpoint_url),
        config=ValidationConfig(deep=deep),
        fmt=fmt,
        images_dir=images_dir,
    )
    if annotated is not None and report.total_lines and fmt == "groundtruth":
        _write_lines(annotated, annotated_lines(manifest, report))
    if as_json:
        typer.echo(json.dumps(report.summary(), indent=2))
    else:
        _print_report(report, show)
        if report.test is not None:
            typer.echo("")
            _print_report(report.test, show)
        for issue in report.manifest_errors + (report.test.manifest_errors if report.test else []):
            typer.echo(f"error: {issue.code}: {issue.message}", err=True)
        typer.echo("result: usable" if report.usable else "result: NOT usable")
        if report.usable and fmt == "groundtruth":
            _print_advice(manifest, test, _bucket_map(bucket_map), _fetch(s3_endpoint_url))
    raise typer.Exit(0 if report.usable else 1)


def _print_advice(
    manifest: Path, test: Path | None, bucket_map: dict[str, Path], fetch: Fetch | None
) -> None:
    """Per-label evidence in the splits ``train`` would make, and what to do about it."""
    from customlabels.datasets.advice import advise_dataset
    from customlabels.formats.groundtruth import read_ground_truth

    dataset, _ = read_ground_truth(manifest, bucket_map, fetch)
    test_set = read_ground_truth(test, bucket_map, fetch)[0] if test is not None else None
    if test_set is not None and test_set.labels.names != dataset.labels.names:
        test_set = None  # label maps differ: advise on the training manifest's own split
    typer.echo("\nper label, in the splits `train` would make (validation, test):")
    typer.echo(advise_dataset(dataset, test_set).format_table())


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@dataset_app.command("split")
def split(
    manifest: Annotated[Path, typer.Argument(help="Ground Truth manifest to split.")],
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", help="Share of test images.")
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (deterministic split).")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for train.manifest and test.manifest (default: beside MANIFEST, as "
            "<name>.train.manifest / <name>.test.manifest, so refs keep resolving).",
        ),
    ] = None,
    bucket_map: BucketMapOpt = None,
    s3_endpoint_url: EndpointOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the split summary as JSON.")
    ] = False,
) -> None:
    """Write train and test manifests; near-duplicate frames stay on one side."""
    from customlabels.datasets.split import plan_split
    from customlabels.formats.groundtruth import read_ground_truth

    dataset, report = read_ground_truth(manifest, _bucket_map(bucket_map), _fetch(s3_endpoint_url))
    plan = plan_split(dataset, test_fraction, seed)
    text = manifest.read_text("utf-8", errors="replace").splitlines()
    sides: dict[bool, list[str]] = {False: [], True: []}
    for im, is_test in zip(dataset.images, plan.is_test.tolist(), strict=True):
        for number in im.extra.get("groundtruth", {}).get("lines", [im.line]):
            sides[is_test].append(text[number - 1])  # the user's line, verbatim
    if out is None:
        train_path = manifest.with_name(f"{manifest.stem}.train.manifest")
        test_path = manifest.with_name(f"{manifest.stem}.test.manifest")
    else:
        train_path, test_path = out / "train.manifest", out / "test.manifest"
    _write_lines(train_path, sides[False])
    _write_lines(test_path, sides[True])
    summary: dict[str, Any] = {
        "train_manifest": str(train_path),
        "test_manifest": str(test_path),
        **plan.summary(),
        "skipped_lines": sorted(report.invalid_lines),
    }
    if out is not None and out.resolve() != manifest.parent.resolve():
        from customlabels.core.uris import s3_bucket_of

        buckets = sorted({b for im in dataset if (b := s3_bucket_of(im.ref))})
        maps = " ".join(f"--bucket-map {b}={manifest.parent}" for b in buckets) or "--bucket-map"
        typer.echo(f"note: refs are kept as written; load these manifests with {maps}", err=True)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"train: {summary['train_images']} images -> {train_path}\n"
        f"test:  {summary['test_images']} images -> {test_path}\n"
        f"near-duplicate groups: {summary['groups']} (largest {summary['largest_group']} images; "
        f"{summary['grouped_images']} images share a group)"
    )
    for name, c in summary["labels"].items():
        typer.echo(f"  {name}: {c['train_images']} train / {c['test_images']} test images")
    for w in plan.warnings:
        typer.echo(f"warning: {w}", err=True)
    if report.invalid_lines:
        typer.echo(f"warning: {len(report.invalid_lines)} invalid lines left out", err=True)


@dataset_app.command("stats")
def stats(
    source: Annotated[Path, typer.Argument(help="Manifest (or dataset in --from format).")],
    fmt: Annotated[str, typer.Option("--from", help="Source format.")] = "groundtruth",
    bucket_map: BucketMapOpt = None,
    s3_endpoint_url: EndpointOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Labels with image and box counts, image sizes and box sizes relative to the image, and
    per label the independent scenes and the validation/test counts `train` would get, with
    advice."""
    from customlabels.datasets.advice import advise_dataset
    from customlabels.datasets.stats import dataset_stats
    from customlabels.formats import load

    options: dict[str, Any] = {
        "bucket_map": _bucket_map(bucket_map) if bucket_map else None,
        "fetch": _fetch(s3_endpoint_url),
    }
    _check_flags(fmt, "load", options)
    dataset = load(fmt, source, **options)
    result = dataset_stats(dataset)
    advice = advise_dataset(dataset) if len(dataset) else None
    if as_json:
        data = result.to_dict()
        data["advice"] = advice.to_dict() if advice else None
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(
        f"{source}: {result.task.value}, {result.images} images "
        f"({result.images_without_labels} without labels), {result.boxes} boxes"
    )
    if result.labels:
        width = max(len(n) for n in result.labels)
        for name, c in result.labels.items():
            typer.echo(f"  {name:<{width}}  {c['images']:>6} images  {c['boxes']:>7} boxes")
    sizes = ", ".join(f"{k} ×{v}" for k, v in list(result.image_sizes.items())[:5])
    typer.echo(
        f"image sizes: {sizes}"
        + (f"; {result.unknown_sizes} unknown" if result.unknown_sizes else "")
    )
    if result.box_rel_side:
        q = result.box_rel_side
        typer.echo(
            "box side / image side: "
            f"p5 {q['p5']:.1%}  p25 {q['p25']:.1%}  median {q['p50']:.1%}  p75 {q['p75']:.1%}  "
            f"p95 {q['p95']:.1%}"
        )
        typer.echo("  " + "  ".join(f"{k}: {v}" for k, v in result.box_rel_side_histogram.items()))
        p = result.box_min_side_px
        typer.echo(
            f"box shorter side (px): min {p['min']:g}  median {p['p50']:g}  max {p['max']:g}"
        )
        b = result.boxes_per_image
        typer.echo(
            f"boxes per labelled image: median {b['p50']:g}  p95 {b['p95']:g}  max {b['max']:g}"
        )
    if advice is not None:
        typer.echo("per label, in the splits `train` would make (validation, test):")
        typer.echo(advice.format_table())


@dataset_app.command("convert")
def convert(
    source: Annotated[Path, typer.Argument(help="Dataset to read (file or folder).")],
    out: Annotated[Path, typer.Argument(help="Where to write (file or folder, by format).")],
    from_fmt: Annotated[str, typer.Option("--from", help="Source format.")] = "groundtruth",
    to_fmt: Annotated[str, typer.Option("--to", help="Target format.")] = "coco",
    bucket_map: BucketMapOpt = None,
    s3_endpoint_url: EndpointOpt = None,
    images_dir: Annotated[
        Path | None,
        typer.Option("--images-dir", help="Image folder for coco/voc sources (default: beside)."),
    ] = None,
    ref_prefix: Annotated[
        str | None,
        typer.Option("--ref-prefix", help="groundtruth output: source-ref = PREFIX + key."),
    ] = None,
) -> None:
    """Convert between groundtruth, coco, voc, yolo and folders (boxes kept to the pixel)."""
    from customlabels.formats import ValidationReport, load, save

    options: dict[str, Any] = {
        "bucket_map": _bucket_map(bucket_map) if bucket_map else None,
        "fetch": _fetch(s3_endpoint_url),
        "images_dir": images_dir,
    }
    _check_flags(from_fmt, "load", options)
    _check_flags(to_fmt, "save", {"ref_prefix": ref_prefix})
    report = ValidationReport(source=str(source))
    dataset = load(from_fmt, source, report=report, **options)
    typer.echo(
        f"read {len(dataset)} images, {dataset.num_boxes} boxes, {len(dataset.labels)} labels "
        f"from {source} ({from_fmt})"
    )
    if report.issues:
        _print_issues(report, 3)
    if not len(dataset):
        typer.echo("error: nothing to convert", err=True)
        raise typer.Exit(1)
    save(to_fmt, dataset, out, ref_prefix=ref_prefix)
    typer.echo(f"wrote {out} ({to_fmt})")


@dataset_app.command("sample")
def sample(
    out: Annotated[Path, typer.Argument(help="Folder for images/ and output.manifest.")],
    images: Annotated[int, typer.Option("--images", min=4, help="How many images.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Generate a small labelled detection sample offline (shapes on textured backgrounds)."""
    from customlabels.datasets.synthetic import generate_sample

    manifest = generate_sample(out, n_images=images, seed=seed)
    typer.echo(f"wrote {manifest}")
