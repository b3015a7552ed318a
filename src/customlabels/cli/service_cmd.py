"""CLI of the service area: ``serve``, ``projects``, ``datasets``, ``models`` and ``export``.

Every command except ``serve`` and ``export`` builds the Rekognition request and sends it either
to a running server (``--endpoint URL``, signed with boto3: credentials from
``CUSTOMLABELS_ACCESS_KEY_ID``/``..._SECRET_ACCESS_KEY`` or the usual AWS ones) or straight to
the catalog of the home folder (no server). The response is printed as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from customlabels.core.durations import DEFAULT_TIME_BUDGET_S
from customlabels.errors import InvalidParameterError

__all__ = ["register"]

projects_app = typer.Typer(help="Projects (CreateProject, DescribeProjects, DeleteProject).")
datasets_app = typer.Typer(help="A project's TRAIN/TEST datasets (CreateDataset, ...).")
models_app = typer.Typer(help="Model versions: train, describe, start, stop, delete.")

_ENDPOINT = typer.Option(
    None, "--endpoint", envvar="CUSTOMLABELS_ENDPOINT", help="URL of a running server."
)
_HOME = typer.Option(
    None, "--home", envvar="CUSTOMLABELS_HOME", help="Home folder (default ~/.customlabels)."
)
_BUCKETS = typer.Option(None, "--buckets", help="Local mode: folder whose subfolders are buckets.")


def _settings(home: Path | None, buckets: Path | None = None, **kw: Any) -> Any:
    from customlabels.service.settings import ServiceSettings

    values: dict[str, Any] = {"buckets_dir": buckets, **kw}
    if home is not None:
        values["home"] = home
    return ServiceSettings(**values)


def _call(
    operation: str,
    params: dict[str, Any],
    endpoint: str | None,
    home: Path | None,
    buckets: Path | None = None,
    wait: bool = False,
) -> dict[str, Any]:
    """Run one Rekognition operation remotely (boto3) or on the local home folder."""
    if endpoint:
        from customlabels.service.remote import call_remote

        remote: dict[str, Any] = call_remote(endpoint, operation, params)
        return remote
    from customlabels.api.awsjson import OPERATIONS, snake
    from customlabels.service.context import open_context

    ctx = open_context(_settings(home, buckets), recover=False)
    try:
        kwargs = {snake(k): v for k, v in params.items()}
        if wait:
            kwargs["wait"] = True
        return OPERATIONS[operation](ctx, **kwargs)
    finally:
        ctx.catalog.close()


def _echo(result: dict[str, Any]) -> None:
    typer.echo(json.dumps(result, indent=2, default=str))


def _project_arn(project: str, endpoint: str | None, home: Path | None) -> str:
    if project.startswith("arn:"):
        return project
    found = _call("DescribeProjects", {"ProjectNames": [project]}, endpoint, home)
    for desc in found["ProjectDescriptions"]:
        return str(desc["ProjectArn"])
    raise InvalidParameterError(f"PROJECT: no project named {project!r}")


def _s3_object(uri: str, option: str) -> dict[str, str]:
    from customlabels.core.uris import parse_s3_uri

    bucket, key = parse_s3_uri(uri, what=option)
    return {"Bucket": bucket, "Name": key}


# --- serve -------------------------------------------------------------------------------------
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8080, help="Port."),
    home: Path | None = _HOME,
    database_url: str | None = typer.Option(
        None, "--database-url", help="SQLAlchemy URL of the catalog (default: SQLite in home)."
    ),
    buckets: Annotated[
        Path | None, typer.Option("--buckets", help="Folder whose subfolders are buckets.")
    ] = None,
    s3_endpoint_url: str | None = typer.Option(
        None, "--s3-endpoint-url", help="S3-compatible store for buckets instead."
    ),
    train_time_budget: str | None = typer.Option(
        None,
        help="Training budget of CreateProjectVersion (e.g. 90s, 15m, 2h; default "
        f"{DEFAULT_TIME_BUDGET_S / 60:g}m).",
    ),
    max_image_bytes: int | None = typer.Option(
        None, help="Largest image accepted as request bytes (default: the service's 4 MiB)."
    ),
    threads: int = typer.Option(1, help="ONNX Runtime threads of each inference session."),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Accept unsigned requests (loopback only)."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    pipeline_bucket: str | None = typer.Option(
        None,
        "--pipeline-bucket",
        help="Bucket `customlabels pipeline run` processes (the console's pipeline page).",
    ),
    pipeline_model: Annotated[
        Path | None,
        typer.Option(
            "--pipeline-model",
            help="Model folder: run the embedded pipeline on --pipeline-bucket in the server.",
        ),
    ] = None,
    train_runner: str = typer.Option(
        "embedded",
        "--train-runner",
        help="Who trains: embedded (a child process here) or celery (`customlabels worker "
        "--queues train` on machines sharing --home; see docs/service.md).",
    ),
    train_broker: str | None = typer.Option(
        None, "--train-broker", help="Celery broker of --train-runner celery: redis://HOST:6379/0."
    ),
) -> None:
    """Serve the Rekognition-compatible API (boto3 at POST /, REST under /v1, docs at /docs)
    and the web console at /console."""
    from dataclasses import replace

    from customlabels.api.server import run
    from customlabels.core.durations import parse_duration

    settings = _settings(
        home,
        buckets,
        database_url=database_url,
        s3_endpoint_url=s3_endpoint_url,
        threads_per_session=threads,
        auth=not no_auth,
        host=host,
        port=port,
        pipeline_bucket=pipeline_bucket,
        pipeline_model=pipeline_model,
        train_runner=train_runner,
        train_broker=train_broker,
    )
    if train_time_budget is not None:
        settings.train_time_budget_s = parse_duration(train_time_budget, "--train-time-budget")
    if max_image_bytes is not None:
        settings.request_limits = replace(settings.request_limits, max_bytes=max_image_bytes)
    run(settings.with_env_credentials(), log_level=log_level)


# --- projects ----------------------------------------------------------------------------------
@projects_app.command("create")
def projects_create(name: str, endpoint: str | None = _ENDPOINT, home: Path | None = _HOME) -> None:
    """Create a project."""
    _echo(_call("CreateProject", {"ProjectName": name}, endpoint, home))


@projects_app.command("list")
def projects_list(endpoint: str | None = _ENDPOINT, home: Path | None = _HOME) -> None:
    """List projects, newest first."""
    _echo(_call("DescribeProjects", {}, endpoint, home))


@projects_app.command("delete")
def projects_delete(
    project: str = typer.Argument(..., help="Project name or ARN."),
    endpoint: str | None = _ENDPOINT,
    home: Path | None = _HOME,
) -> None:
    """Delete a project (its model versions must be deleted first)."""
    arn = _project_arn(project, endpoint, home)
    _echo(_call("DeleteProject", {"ProjectArn": arn}, endpoint, home))


# --- datasets ----------------------------------------------------------------------------------
@datasets_app.command("create")
def datasets_create(
    project: str = typer.Argument(..., help="Project name or ARN."),
    dataset_type: str = typer.Option("TRAIN", "--type", help="TRAIN or TEST."),
    manifest: str | None = typer.Option(
        None, "--manifest", help="Ground Truth manifest: s3://BUCKET/KEY."
    ),
    copy_from: str | None = typer.Option(None, "--from", help="Copy this dataset ARN."),
    endpoint: str | None = _ENDPOINT,
    home: Path | None = _HOME,
    buckets: Path | None = _BUCKETS,
) -> None:
    """Create a project's TRAIN or TEST dataset (empty, from a manifest, or a copy)."""
    params: dict[str, Any] = {
        "ProjectArn": _project_arn(project, endpoint, home),
        "DatasetType": dataset_type.upper(),
    }
    if manifest and copy_from:
        raise InvalidParameterError("--manifest and --from: give one of them, not both")
    if manifest:
        params["DatasetSource"] = {
            "GroundTruthManifest": {"S3Object": _s3_object(manifest, "--manifest")}
        }
    elif copy_from:
        params["DatasetSource"] = {"DatasetArn": copy_from}
    _echo(_call("CreateDataset", params, endpoint, home, buckets))


@datasets_app.command("describe")
def datasets_describe(
    dataset_arn: str, endpoint: str | None = _ENDPOINT, home: Path | None = _HOME
) -> None:
    """Status and statistics of a dataset."""
    _echo(_call("DescribeDataset", {"DatasetArn": dataset_arn}, endpoint, home))


@datasets_app.command("distribute")
def datasets_distribute(
    train_arn: str, test_arn: str, endpoint: str | None = _ENDPOINT, home: Path | None = _HOME
) -> None:
    """Move 20% of the TRAIN dataset's entries into the empty TEST dataset."""
    params = {"Datasets": [{"Arn": train_arn}, {"Arn": test_arn}]}
    _echo(_call("DistributeDatasetEntries", params, endpoint, home))


# --- models ------------------------------------------------------------------------------------
@models_app.command("train")
def models_train(
    project: str = typer.Argument(..., help="Project name or ARN."),
    version: str = typer.Argument(..., help="Version name."),
    output: str | None = typer.Option(
        None, "--output", help="s3://BUCKET/PREFIX/ to copy the model and evaluation to."
    ),
    auto_test: bool = typer.Option(
        True, help="Hold out 20% of TRAIN as the test set (else the TEST dataset)."
    ),
    time_budget: str | None = typer.Option(None, help="Training budget (e.g. 90s, 15m)."),
    endpoint: str | None = _ENDPOINT,
    home: Path | None = _HOME,
    buckets: Path | None = _BUCKETS,
) -> None:
    """Train a model version (CreateProjectVersion); locally it runs in the foreground."""
    from customlabels.core.durations import parse_duration
    from customlabels.service.versions import TIME_BUDGET_TAG

    params: dict[str, Any] = {
        "ProjectArn": _project_arn(project, endpoint, home),
        "VersionName": version,
        "OutputConfig": {},
        "TestingData": {"AutoCreate": auto_test},
    }
    if output:
        from customlabels.core.uris import parse_s3_uri

        bucket, prefix = parse_s3_uri(output, key_required=False, what="--output")
        params["OutputConfig"] = {"S3Bucket": bucket, "S3KeyPrefix": prefix}
    if time_budget:
        params["Tags"] = {TIME_BUDGET_TAG: f"{parse_duration(time_budget, '--time-budget'):g}"}
    result = _call("CreateProjectVersion", params, endpoint, home, buckets, wait=not endpoint)
    if not endpoint:
        arn = result["ProjectVersionArn"]
        described = _call(
            "DescribeProjectVersions", {"ProjectArn": params["ProjectArn"]}, None, home
        )
        result = next(
            d for d in described["ProjectVersionDescriptions"] if d["ProjectVersionArn"] == arn
        )
    _echo(result)


@models_app.command("import")
def models_import(
    project: Annotated[str, typer.Argument(help="Project name or ARN.")],
    version: Annotated[str, typer.Argument(help="Version name.")],
    model_dir: Annotated[Path, typer.Argument(help="Model folder or exported bundle.")],
    home: Path | None = _HOME,
) -> None:
    """Register a model trained with `customlabels train` as a version (local home only)."""
    from customlabels.service.context import open_context
    from customlabels.service.versions import import_model_version

    ctx = open_context(_settings(home), recover=False)
    try:
        arn = _project_arn(project, None, home)
        _echo(import_model_version(ctx, arn, version, model_dir))
    finally:
        ctx.catalog.close()


@models_app.command("describe")
def models_describe(
    project: str = typer.Argument(..., help="Project name or ARN."),
    version: Annotated[
        list[str] | None, typer.Option("--version", help="Only these version names.")
    ] = None,
    endpoint: str | None = _ENDPOINT,
    home: Path | None = _HOME,
) -> None:
    """Status, evaluation and timings of a project's model versions."""
    params: dict[str, Any] = {"ProjectArn": _project_arn(project, endpoint, home)}
    if version:
        params["VersionNames"] = version
    _echo(_call("DescribeProjectVersions", params, endpoint, home))


@models_app.command("start")
def models_start(
    version_arn: str,
    units: int = typer.Option(1, "--units", help="MinInferenceUnits: parallel ONNX sessions."),
    endpoint: str | None = _ENDPOINT,
) -> None:
    """Start serving a model version on a running server."""
    params = {"ProjectVersionArn": version_arn, "MinInferenceUnits": units}
    _echo(_call("StartProjectVersion", params, _need_endpoint(endpoint, "start"), None))


@models_app.command("stop")
def models_stop(version_arn: str, endpoint: str | None = _ENDPOINT) -> None:
    """Stop serving a model version (frees its sessions)."""
    params = {"ProjectVersionArn": version_arn}
    _echo(_call("StopProjectVersion", params, _need_endpoint(endpoint, "stop"), None))


@models_app.command("delete")
def models_delete(
    version_arn: str, endpoint: str | None = _ENDPOINT, home: Path | None = _HOME
) -> None:
    """Delete a model version that is neither training nor running."""
    _echo(_call("DeleteProjectVersion", {"ProjectVersionArn": version_arn}, endpoint, home))


def _need_endpoint(endpoint: str | None, verb: str) -> str:
    if not endpoint:
        raise InvalidParameterError(
            f"models {verb}: serving happens in a running server; pass --endpoint URL "
            "(start one with `customlabels serve`)"
        )
    return endpoint


# --- export ------------------------------------------------------------------------------------
def export(
    model: Annotated[str, typer.Argument(help="Model folder, bundle, or model version ARN.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the bundle to.")],
    home: Path | None = _HOME,
    for_lambda: Annotated[
        bool,
        typer.Option(
            "--lambda",
            help="Write an AWS Lambda container build context (Dockerfile, requirements, SAM "
            "template; the bundle in OUT/model) instead of a bare bundle.",
        ),
    ] = False,
    prefix: Annotated[
        str, typer.Option("--prefix", help="--lambda: the template's default input prefix.")
    ] = "test_images/",
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Quantize to int8 (ONNX Runtime, static, calibrated on training images); "
            "needs the onnx package. Not the default: measure it first (bench/int8.py).",
        ),
    ] = False,
    calibration_images: Annotated[
        int,
        typer.Option(
            "--calibration-images", min=1, help="--int8: training images to calibrate on."
        ),
    ] = 100,  # service.int8.DEFAULT_CALIBRATION_IMAGES (not imported here: the CLI loads fast)
    calibration_manifest: Annotated[
        Path | None,
        typer.Option(
            "--calibration-manifest",
            help="--int8: Ground Truth manifest holding the model's training images [a "
            "service version's input/train.manifest].",
        ),
    ] = None,
    bucket: Annotated[
        list[str] | None,
        typer.Option(
            "--bucket-map",
            help="--int8: map s3://NAME/... refs to a local FOLDER (NAME=FOLDER, repeatable).",
        ),
    ] = None,
) -> None:
    """Write a self-contained bundle (model.onnx + model.json) that `customlabels detect` runs."""
    from customlabels.service.resolve import export_model

    if not int8 and (calibration_manifest is not None or bucket):
        raise InvalidParameterError("--calibration-manifest and --bucket-map go with --int8")

    def write(target: Path) -> Path:
        if not int8:
            return export_model(model, target, home=home)
        from customlabels.formats.refs import parse_bucket_map
        from customlabels.service.int8 import export_int8

        return export_int8(
            model,
            target,
            calibration_manifest=calibration_manifest,
            calibration_count=calibration_images,
            bucket_map=parse_bucket_map(bucket),
            home=home,
        )

    if for_lambda:
        from customlabels.aws.bundle import write_lambda_context

        bundle = write(out / "model")
        typer.echo(str(write_lambda_context(bundle, out, prefix=prefix)))
        return
    typer.echo(str(write(out)))


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""
    app.command("serve")(serve)
    app.command("export")(export)
    app.add_typer(projects_app, name="projects")
    app.add_typer(datasets_app, name="datasets")
    app.add_typer(models_app, name="models")
