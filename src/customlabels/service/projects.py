"""Use cases: CreateProject, DescribeProjects, DeleteProject.

Each function takes the :class:`Context` and snake_case parameters named after the request's
fields, and returns the response in the service's shape (field names as boto3 expects).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from customlabels.errors import (
    InvalidParameterError,
    ResourceInUseError,
    ResourceNotFoundError,
)
from customlabels.service.arns import check_name, parse_arn, project_arn
from customlabels.service.catalog import DatasetEntryRow, DatasetRow, ProjectRow, VersionRow
from customlabels.service.context import Context, now
from customlabels.service.tags import check_tags

__all__ = [
    "create_project",
    "delete_project",
    "describe_projects",
    "get_project",
    "project_arn_of",
]

FEATURE = "CUSTOM_LABELS"  # the only feature served


def get_project(session: Session, arn: str, field: str = "ProjectArn") -> ProjectRow:
    """The project of ``arn``; ResourceNotFoundError when there is none."""
    parse_arn(arn, "project", field)
    row = session.scalars(select(ProjectRow).where(ProjectRow.arn == arn)).first()
    if row is None:
        raise ResourceNotFoundError(f"{field}: no project {arn}")
    return row


def create_project(
    ctx: Context,
    project_name: str,
    feature: str = FEATURE,
    auto_update: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create a project.

    Args:
        feature: only ``CUSTOM_LABELS`` (content-moderation adapters are not served).
        auto_update: only ``DISABLED``: automatic retraining applies to content-moderation
            adapters, and versions here are trained on request only.
        tags: kept on the project (ListTagsForResource).
    """
    check_name(project_name, "ProjectName")
    if feature != FEATURE:
        raise InvalidParameterError(f"Feature: expected {FEATURE}, got {feature!r}")
    if auto_update not in (None, "DISABLED"):
        raise InvalidParameterError(
            f"AutoUpdate: expected DISABLED (automatic retraining is for content-moderation "
            f"adapters, not served here), got {auto_update!r}"
        )
    tag_map = check_tags(tags)
    with ctx.catalog.session() as s:
        if s.scalars(select(ProjectRow).where(ProjectRow.name == project_name)).first():
            raise ResourceInUseError(f"ProjectName: a project named {project_name!r} exists")
        created = now()
        row = ProjectRow(
            name=project_name,
            arn=project_arn(project_name, int(created * 1000)),
            created_at=created,
            feature=feature,
            tags=json.dumps(tag_map, ensure_ascii=False),
        )
        s.add(row)
        return {"ProjectArn": row.arn}


def _describe(row: ProjectRow) -> dict[str, Any]:
    return {
        "ProjectArn": row.arn,
        "CreationTimestamp": row.created_at,
        "Status": row.status,
        "Feature": row.feature,
        "Datasets": [
            {
                "CreationTimestamp": d.created_at,
                "DatasetType": d.dataset_type,
                "DatasetArn": d.arn,
                "Status": d.status,
                "StatusMessage": d.status_message,
                "StatusMessageCode": d.status_message_code,
            }
            for d in sorted(row.datasets, key=lambda d: d.dataset_type, reverse=True)
        ],
    }


def describe_projects(
    ctx: Context,
    project_names: list[str] | None = None,
    next_token: str | None = None,
    max_results: int | None = None,
    features: list[str] | None = None,
) -> dict[str, Any]:
    """Projects, newest first, paginated by an offset token.

    Args:
        project_names: only these projects.
        features: only projects of these features (every project here is ``CUSTOM_LABELS``).
    """
    start = _token(next_token)
    size = _page_size(max_results)
    with ctx.catalog.session() as s:
        query = select(ProjectRow).order_by(ProjectRow.created_at.desc(), ProjectRow.id.desc())
        if project_names:
            query = query.where(ProjectRow.name.in_(project_names))
        if features:
            query = query.where(ProjectRow.feature.in_(features))
        rows = s.scalars(query.offset(start).limit(size + 1)).all()
        out: dict[str, Any] = {"ProjectDescriptions": [_describe(r) for r in rows[:size]]}
    if len(rows) > size:
        out["NextToken"] = str(start + size)
    return out


def delete_project(ctx: Context, project_arn: str) -> dict[str, Any]:
    """Delete a project with no model versions left (its datasets go with it)."""
    with ctx.catalog.session() as s:
        row = get_project(s, project_arn)
        if s.scalars(select(VersionRow).where(VersionRow.project_id == row.id)).first():
            raise ResourceInUseError(
                f"ProjectArn: {project_arn} still has model versions; delete them first"
            )
        for ds in s.scalars(select(DatasetRow).where(DatasetRow.project_id == row.id)).all():
            s.query(DatasetEntryRow).filter(DatasetEntryRow.dataset_id == ds.id).delete()
            s.delete(ds)
        s.delete(row)
    return {"Status": "DELETING"}


def _token(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidParameterError(
            f"NextToken: expected a token from a previous page, got {token!r}"
        )
    return int(token)


def _page_size(max_results: int | None, default: int = 100) -> int:
    if max_results is None:
        return default
    if not isinstance(max_results, int) or not 1 <= max_results <= 100:
        raise InvalidParameterError(
            f"MaxResults: expected an integer in 1–100, got {max_results!r}"
        )
    return max_results


page_token = _token
page_size = _page_size


def project_arn_of(ctx: Context, name: str) -> str:
    """The ARN of the project named ``name`` (ResourceNotFoundError when none)."""
    with ctx.catalog.session() as s:
        row = s.scalars(select(ProjectRow).where(ProjectRow.name == name)).first()
        if row is None:
            raise ResourceNotFoundError(f"project {name!r}: no such project")
        return row.arn
