"""Use cases on model versions: train (CreateProjectVersion), describe, start, stop, delete, and
DetectCustomLabels against a running version.

Status lifecycle (``VersionStatus``): TRAINING_IN_PROGRESS → TRAINING_COMPLETED | TRAINING_FAILED;
then STARTING → RUNNING (or FAILED) → STOPPING → STOPPED, and again STARTING from STOPPED;
DELETING while a version is removed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from customlabels.core.durations import parse_duration
from customlabels.core.uris import format_s3_uri
from customlabels.errors import (
    InvalidParameterError,
    LimitExceededError,
    ResourceInUseError,
    ResourceNotFoundError,
    ResourceNotReadyError,
)
from customlabels.service.arns import check_name, parse_arn, version_arn
from customlabels.service.buckets import s3_object
from customlabels.service.catalog import DatasetEntryRow, DatasetRow, VersionRow, VersionStatus
from customlabels.service.context import Context, now
from customlabels.service.expert_config import check_expert_config, record_expert_config
from customlabels.service.projects import get_project, page_size, page_token
from customlabels.service.tags import check_tags

__all__ = [
    "MAX_INFERENCE_UNITS",
    "TIME_BUDGET_TAG",
    "create_project_version",
    "delete_project_version",
    "describe_project_versions",
    "detect_custom_labels",
    "get_version",
    "import_model_version",
    "start_project_version",
    "stop_project_version",
    "version_arn_of",
]

TIME_BUDGET_TAG = "customlabels:time-budget"
MAX_INFERENCE_UNITS = 16
_STARTABLE = {
    VersionStatus.TRAINING_COMPLETED.value,
    VersionStatus.STOPPED.value,
    VersionStatus.FAILED.value,
}


def get_version(session: Session, arn: str, field: str = "ProjectVersionArn") -> VersionRow:
    parse_arn(arn, "version", field)
    row = session.scalars(select(VersionRow).where(VersionRow.arn == arn)).first()
    if row is None:
        raise ResourceNotFoundError(f"{field}: no model version {arn}")
    return row


def create_project_version(
    ctx: Context,
    project_arn: str,
    version_name: str,
    output_config: dict[str, str] | None = None,
    training_data: dict[str, Any] | None = None,
    testing_data: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    kms_key_id: str | None = None,
    version_description: str | None = None,
    wait: bool = False,
    expert_config: str | None = None,
) -> dict[str, Any]:
    """Train a new model version from the project's datasets.

    Args:
        output_config: ``{S3Bucket, S3KeyPrefix}``: where the model and its evaluation are
            copied (the bucket must exist; a server without buckets refuses one). Empty: the
            artifacts stay under the home folder.
        training_data: only ``{}`` (the project's TRAIN dataset); ``Assets`` are refused.
        testing_data: ``{"AutoCreate": true}`` holds out 20% of the training entries as the test
            set; otherwise the project's TEST dataset is used (or the split when there is none).
            ``Assets`` are refused.
        tags: kept on the version (ListTagsForResource); ``customlabels:time-budget`` (a
            duration, e.g. ``15m``) also overrides the server's training budget.
        kms_key_id: refused: artifacts are written unencrypted under the home folder.
        version_description: kept and returned by DescribeProjectVersions.
        wait: train in the calling thread (the CLI's local mode) instead of the worker.
        expert_config: YAML text of training knobs passed to ``customlabels train --config``
            (see :mod:`customlabels.service.expert_config`: its shape is checked here, its
            fields by the training child).
    """
    check_name(version_name, "VersionName")
    for field, data in (("TrainingData", training_data), ("TestingData", testing_data)):
        if (data or {}).get("Assets"):
            raise InvalidParameterError(
                f"{field}.Assets: manifests given here are not supported; create the project's "
                f"{field[:-4].upper()} dataset with CreateDataset instead"
            )
    if kms_key_id is not None:
        raise InvalidParameterError(
            "KmsKeyId: not supported; model artifacts are stored unencrypted under the server's "
            "home folder (encrypt that volume instead)"
        )
    tags = check_tags(tags)
    expert_config = check_expert_config(expert_config)
    budget = ctx.settings.train_time_budget_s
    if TIME_BUDGET_TAG in tags:
        budget = parse_duration(tags[TIME_BUDGET_TAG], f"Tags.{TIME_BUDGET_TAG}")
    out = output_config or {}
    bucket, prefix = out.get("S3Bucket", ""), out.get("S3KeyPrefix", "")
    if prefix and not bucket:
        raise InvalidParameterError(
            f"OutputConfig.S3KeyPrefix: needs OutputConfig.S3Bucket, got only {prefix!r}"
        )
    if bucket:
        ctx.buckets.store(bucket)  # fails now (not after training) on a missing bucket
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    with ctx.catalog.session() as s:
        project = get_project(s, project_arn)
        if any(v.name == version_name for v in project.versions):
            raise ResourceInUseError(
                f"VersionName: project {project.name} already has a version {version_name!r}"
            )
        train = next((d for d in project.datasets if d.dataset_type == "TRAIN"), None)
        if train is None or not _valid_entries(s, train):
            raise ResourceNotReadyError(
                f"ProjectArn: project {project.name} has no TRAIN dataset with valid entries; "
                "create one with CreateDataset"
            )
        created = now()
        row = VersionRow(
            project_id=project.id,
            name=version_name,
            arn=version_arn(project.name, version_name, int(created * 1000)),
            created_at=created,
            status=VersionStatus.TRAINING_IN_PROGRESS.value,
            status_message="queued for training",
            model_dir=str(ctx.settings.models_dir / project.name / version_name / "model"),
            output_bucket=bucket,
            output_prefix=prefix,
            auto_test=int(bool((testing_data or {}).get("AutoCreate"))),
            time_budget_s=budget,
            tags=json.dumps(tags),
            description=version_description or "",
        )
        s.add(row)
        s.flush()
        version_id, arn = row.id, row.arn
        record_expert_config(Path(row.model_dir).parent, expert_config)
    if wait:
        ctx.trainer.run_now(version_id)
    else:
        ctx.trainer.submit(version_id)
    return {"ProjectVersionArn": arn}


def _valid_entries(session: Session, dataset: DatasetRow) -> bool:
    return (
        session.scalars(
            select(DatasetEntryRow.id).where(
                DatasetEntryRow.dataset_id == dataset.id, DatasetEntryRow.error == ""
            )
        ).first()
        is not None
    )


def _describe(row: VersionRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ProjectVersionArn": row.arn,
        "CreationTimestamp": row.created_at,
        "Status": row.status,
        "StatusMessage": row.status_message,
        "Feature": "CUSTOM_LABELS",
    }
    if row.output_bucket or row.output_prefix:
        out["OutputConfig"] = {"S3Bucket": row.output_bucket, "S3KeyPrefix": row.output_prefix}
    if row.min_units is not None:
        out["MinInferenceUnits"] = row.min_units
    if row.max_units is not None:
        out["MaxInferenceUnits"] = row.max_units
    if row.description:
        out["VersionDescription"] = row.description
    if row.training_end is not None:
        out["TrainingEndTimestamp"] = row.training_end
        started = row.training_started_at or row.created_at
        out["BillableTrainingTimeInSeconds"] = max(0, round(row.training_end - started))
    if row.status not in (
        VersionStatus.TRAINING_IN_PROGRESS.value,
        VersionStatus.TRAINING_FAILED.value,
    ):
        evaluation: dict[str, Any] = {}
        if row.f1_score is not None:
            evaluation["F1Score"] = row.f1_score
        if row.summary_key:
            evaluation["Summary"] = {
                "S3Object": {"Bucket": row.output_bucket, "Name": row.summary_key}
            }
        if evaluation:
            out["EvaluationResult"] = evaluation
        if row.manifest_summary_key:
            out["ManifestSummary"] = {
                "S3Object": {"Bucket": row.output_bucket, "Name": row.manifest_summary_key}
            }
    return out


def describe_project_versions(
    ctx: Context,
    project_arn: str,
    version_names: list[str] | None = None,
    next_token: str | None = None,
    max_results: int | None = None,
) -> dict[str, Any]:
    """Versions of a project, newest first."""
    start, size = page_token(next_token), page_size(max_results)
    with ctx.catalog.session() as s:
        project = get_project(s, project_arn)
        query = (
            select(VersionRow)
            .where(VersionRow.project_id == project.id)
            .order_by(VersionRow.created_at.desc(), VersionRow.id.desc())
        )
        if version_names:
            query = query.where(VersionRow.name.in_(version_names))
        rows = s.scalars(query.offset(start).limit(size + 1)).all()
        out: dict[str, Any] = {"ProjectVersionDescriptions": [_describe(r) for r in rows[:size]]}
    if len(rows) > size:
        out["NextToken"] = str(start + size)
    return out


def start_project_version(
    ctx: Context,
    project_version_arn: str,
    min_inference_units: int,
    max_inference_units: int | None = None,
    wait: bool = False,
) -> dict[str, Any]:
    """Load ``min_inference_units`` ONNX sessions of the version into the serving pool.

    Returns at once with STARTING; the version turns RUNNING (or FAILED) when loaded.
    """
    if not isinstance(min_inference_units, int) or min_inference_units < 1:
        raise InvalidParameterError(
            f"MinInferenceUnits: expected an integer ≥ 1, got {min_inference_units!r}"
        )
    if min_inference_units > MAX_INFERENCE_UNITS:
        raise LimitExceededError(
            f"MinInferenceUnits: at most {MAX_INFERENCE_UNITS} sessions, got {min_inference_units}"
        )
    if max_inference_units is not None and max_inference_units < min_inference_units:
        raise InvalidParameterError(
            f"MaxInferenceUnits: expected ≥ MinInferenceUnits ({min_inference_units}), got "
            f"{max_inference_units}"
        )
    with ctx.catalog.session() as s:
        row = get_version(s, project_version_arn)
        if row.status not in _STARTABLE:
            raise ResourceInUseError(
                f"ProjectVersionArn: {row.arn} is {row.status}; "
                f"expected one of {sorted(_STARTABLE)}"
            )
        row.status = VersionStatus.STARTING.value
        row.status_message = f"loading {min_inference_units} inference session(s)"
        row.min_units, row.max_units = min_inference_units, max_inference_units
        model_dir = Path(row.model_dir)

    def done(arn: str, error: str | None) -> None:
        with ctx.catalog.session() as s:
            current = s.scalars(select(VersionRow).where(VersionRow.arn == arn)).first()
            if current is None or current.status != VersionStatus.STARTING.value:
                ctx.pool.stop(arn)  # stopped or deleted while loading
                return
            current.status = (VersionStatus.FAILED if error else VersionStatus.RUNNING).value
            current.status_message = error or "the model is running"

    ctx.pool.start(
        project_version_arn,
        model_dir,
        min_inference_units,
        ctx.settings.threads_per_session,
        done,
        background=not wait,
    )
    return {"Status": VersionStatus.STARTING.value}


def stop_project_version(ctx: Context, project_version_arn: str) -> dict[str, Any]:
    """Drop the version's sessions from the pool (their memory is freed)."""
    with ctx.catalog.session() as s:
        row = get_version(s, project_version_arn)
        if row.status not in (VersionStatus.RUNNING.value, VersionStatus.STARTING.value):
            raise ResourceInUseError(
                f"ProjectVersionArn: {row.arn} is {row.status}; only a RUNNING or STARTING "
                "version can be stopped"
            )
        row.status = VersionStatus.STOPPING.value
    ctx.pool.stop(project_version_arn)
    with ctx.catalog.session() as s:
        row = get_version(s, project_version_arn)
        row.status = VersionStatus.STOPPED.value
        row.status_message = "stopped"
    return {"Status": VersionStatus.STOPPING.value}


def delete_project_version(ctx: Context, project_version_arn: str) -> dict[str, Any]:
    """Delete a version that is neither training nor serving, and its files under the home."""
    busy = {
        VersionStatus.TRAINING_IN_PROGRESS.value,
        VersionStatus.STARTING.value,
        VersionStatus.RUNNING.value,
        VersionStatus.STOPPING.value,
    }
    with ctx.catalog.session() as s:
        row = get_version(s, project_version_arn)
        if row.status in busy:
            raise ResourceInUseError(
                f"ProjectVersionArn: {row.arn} is {row.status}; stop it (or wait for training) "
                "before deleting it"
            )
        row.status = VersionStatus.DELETING.value
        version_dir = Path(row.model_dir).parent
    shutil.rmtree(version_dir, ignore_errors=True)
    with ctx.catalog.session() as s:
        s.delete(get_version(s, project_version_arn))
    return {"Status": VersionStatus.DELETING.value}


def detect_custom_labels(
    ctx: Context,
    project_version_arn: str,
    image: dict[str, Any],
    max_results: int | None = None,
    min_confidence: float | None = None,
) -> dict[str, Any]:
    """Run a RUNNING version on one image.

    Args:
        image: ``{"Bytes": bytes}`` (limits of ``settings.request_limits``, 4 MB by default) or
            ``{"S3Object": {"Bucket", "Name"}}`` (``settings.s3_limits``, 15 MB).
        max_results: keep at most this many labels.
        min_confidence: 0–100; omitted: each label's assumed threshold.

    Returns:
        ``{"CustomLabels": [...]}`` highest confidence first, confidences 0–100.
    """
    parse_arn(project_version_arn, "version", "ProjectVersionArn")
    try:
        model = ctx.pool.get(project_version_arn)
    except ResourceNotReadyError:
        with ctx.catalog.session() as s:
            row = get_version(s, project_version_arn)  # ResourceNotFound when unknown
            status = row.status
        raise ResourceNotReadyError(
            f"ProjectVersionArn: {project_version_arn} is {status}, not RUNNING; start it with "
            "StartProjectVersion"
        ) from None
    image = image or {}
    has_bytes, has_s3 = "Bytes" in image, "S3Object" in image
    if has_bytes == has_s3:
        raise InvalidParameterError("Image: expected exactly one of Bytes or S3Object")
    if has_bytes:
        data, name, limits = image["Bytes"], "Image.Bytes", ctx.settings.request_limits
        if not isinstance(data, bytes | bytearray):
            raise InvalidParameterError("Image.Bytes: expected image bytes")
        data = bytes(data)
    else:
        bucket, key = s3_object(image["S3Object"], "Image.S3Object")
        limits = ctx.settings.s3_limits
        data = ctx.buckets.get(bucket, key, max_bytes=limits.max_bytes)
        name = format_s3_uri(bucket, key)
    return model.detect(data, name, min_confidence, max_results, limits)


def version_arn_of(ctx: Context, project: str, version: str) -> str:
    """The ARN of version ``version`` of project ``project`` (ResourceNotFoundError when none)."""
    with ctx.catalog.session() as s:
        for row in s.scalars(select(VersionRow).where(VersionRow.name == version)):
            if row.project.name == project:
                return row.arn
    raise ResourceNotFoundError(f"model version {project}/{version}: no such version")


def import_model_version(
    ctx: Context, project_arn: str, version_name: str, model_dir: Path
) -> dict[str, Any]:
    """Register a model trained outside the service (``customlabels train --out DIR``, or an
    exported bundle) as a TRAINING_COMPLETED version of a project, ready to start.

    The folder's ``model.onnx`` and ``model.json`` (and ``evaluation/`` if present) are copied
    under the home folder; the card is validated first.
    """
    from customlabels.core.model_card import CARD_NAME, ONNX_NAME, ModelCard
    from customlabels.service.evaluation_summary import test_f1
    from customlabels.service.resolve import resolve_model

    check_name(version_name, "VersionName")
    src = resolve_model(model_dir)
    card = ModelCard.load(src)
    with ctx.catalog.session() as s:
        project = get_project(s, project_arn)
        if any(v.name == version_name for v in project.versions):
            raise ResourceInUseError(
                f"VersionName: project {project.name} already has a version {version_name!r}"
            )
        target = ctx.settings.models_dir / project.name / version_name / "model"
        if target.parent.exists():
            shutil.rmtree(target.parent)
        target.mkdir(parents=True)
        for name in (ONNX_NAME, CARD_NAME):
            shutil.copy2(src / name, target / name)
        if (src / "evaluation").is_dir():
            shutil.copytree(src / "evaluation", target / "evaluation")
        created = now()
        row = VersionRow(
            project_id=project.id,
            name=version_name,
            arn=version_arn(project.name, version_name, int(created * 1000)),
            created_at=created,
            status=VersionStatus.TRAINING_COMPLETED.value,
            status_message=f"imported from {src}",
            model_dir=str(target),
            training_started_at=created,
            training_end=created,
            f1_score=test_f1(card),
            description=f"imported: {card.version_name or src.name}"[:255],
        )
        s.add(row)
        return {"ProjectVersionArn": row.arn, "Status": row.status}
