"""Tags of projects, datasets and model versions: CreateProject / CreateDataset /
CreateProjectVersion ``Tags``, TagResource, UntagResource and ListTagsForResource.

Each resource keeps its tags as a JSON object in its own catalog row, so a resource's tags go
with it when it is deleted. Lengths and counts are checked against botocore's model by the API
layer; the rules the model cannot express (``aws:`` is reserved, 50 tags a resource) are here.
"""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from customlabels.errors import InvalidParameterError, LimitExceededError, ResourceNotFoundError
from customlabels.service.arns import parse_arn
from customlabels.service.catalog import DatasetRow, ProjectRow, VersionRow
from customlabels.service.context import Context

__all__ = [
    "MAX_TAGS",
    "check_tags",
    "list_tags_for_resource",
    "set_tags",
    "tag_resource",
    "untag_resource",
]

MAX_TAGS = 50  # per resource, as the service allows
_RESERVED = "aws:"
Row = ProjectRow | DatasetRow | VersionRow
_ROWS: dict[str, type[Row]] = {
    "project": ProjectRow,
    "dataset": DatasetRow,
    "version": VersionRow,
}


def check_tags(tags: dict[str, str] | None, field: str = "Tags") -> dict[str, str]:
    """A copy of ``tags`` once its keys are allowed (none starts with ``aws:``)."""
    out = dict(tags or {})
    reserved = sorted(k for k in out if k.lower().startswith(_RESERVED))
    if reserved:
        raise InvalidParameterError(
            f"{field}: keys starting with {_RESERVED!r} are reserved, got {reserved}"
        )
    if len(out) > MAX_TAGS:
        raise LimitExceededError(f"{field}: at most {MAX_TAGS} tags a resource, got {len(out)}")
    return out


def _row(session: Session, arn: str) -> Row:
    for kind, table in _ROWS.items():
        try:
            parse_arn(arn, kind, "ResourceArn")
        except InvalidParameterError:
            continue
        row = cast(Row | None, session.scalars(select(table).where(table.arn == arn)).first())
        if row is None:
            raise ResourceNotFoundError(f"ResourceArn: no {kind} {arn}")
        return row
    raise InvalidParameterError(
        f"ResourceArn: expected a project, dataset or model version ARN, got {arn!r}"
    )


def set_tags(session: Session, arn: str, tags: dict[str, str]) -> dict[str, str]:
    """Add ``tags`` (already checked) to the resource's; a key given again takes the new value.

    Raises:
        LimitExceededError: the resource would have over :data:`MAX_TAGS` tags.
    """
    row = _row(session, arn)
    merged = {**json.loads(row.tags or "{}"), **tags}
    check_tags(merged)
    row.tags = json.dumps(merged, ensure_ascii=False)
    return merged


def list_tags_for_resource(ctx: Context, resource_arn: str) -> dict[str, Any]:
    with ctx.catalog.session() as s:
        return {"Tags": json.loads(_row(s, resource_arn).tags or "{}")}


def tag_resource(ctx: Context, resource_arn: str, tags: dict[str, str]) -> dict[str, Any]:
    checked = check_tags(tags)
    with ctx.catalog.session() as s:
        set_tags(s, resource_arn, checked)
    return {}


def untag_resource(ctx: Context, resource_arn: str, tag_keys: list[str]) -> dict[str, Any]:
    """Remove the tags named in ``tag_keys`` (keys the resource does not have are no-ops)."""
    with ctx.catalog.session() as s:
        row = _row(s, resource_arn)
        kept = {k: v for k, v in json.loads(row.tags or "{}").items() if k not in set(tag_keys)}
        row.tags = json.dumps(kept, ensure_ascii=False)
    return {}
