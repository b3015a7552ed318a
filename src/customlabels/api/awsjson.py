"""The AWS JSON 1.1 endpoint: ``POST /`` with ``X-Amz-Target: RekognitionService.<Operation>``.

Requests are checked against botocore's own service model for ``rekognition`` (the shapes boto3
sends): botocore's validator checks names, types, required members and minimums, and
:func:`_check_maximums` the maximums it leaves out (lengths, counts, values). Blobs are
base64-decoded, and the operation's use case is called with the request's fields as snake_case
keyword arguments; a field the use case does not take is refused, never dropped. Each field a
use case takes is honoured or refused there (the table in ``tests/api/test_request_fields.py``
walks the model and checks each one). The response is the use case's dict as JSON.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from customlabels.errors import InvalidParameterError
from customlabels.service import datasets, projects, tags, versions

__all__ = ["OPERATIONS", "TARGET_PREFIX", "call_operation"]

TARGET_PREFIX = "RekognitionService."

# The registry: Rekognition operation name → use case.
OPERATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "CreateProject": projects.create_project,
    "DescribeProjects": projects.describe_projects,
    "DeleteProject": projects.delete_project,
    "CreateDataset": datasets.create_dataset,
    "DescribeDataset": datasets.describe_dataset,
    "ListDatasetEntries": datasets.list_dataset_entries,
    "ListDatasetLabels": datasets.list_dataset_labels,
    "UpdateDatasetEntries": datasets.update_dataset_entries,
    "DistributeDatasetEntries": datasets.distribute_dataset_entries,
    "DeleteDataset": datasets.delete_dataset,
    "CreateProjectVersion": versions.create_project_version,
    "DescribeProjectVersions": versions.describe_project_versions,
    "StartProjectVersion": versions.start_project_version,
    "StopProjectVersion": versions.stop_project_version,
    "DeleteProjectVersion": versions.delete_project_version,
    "DetectCustomLabels": versions.detect_custom_labels,
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
    "ListTagsForResource": tags.list_tags_for_resource,
}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(name: str) -> str:
    """``ProjectVersionArn`` → ``project_version_arn``."""
    return _CAMEL.sub("_", name).lower()


@cache
def _service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("rekognition")


def _decode_blobs(value: Any, shape: Any, path: str) -> Any:
    """Base64-decode every blob member of ``value`` (as the JSON protocol sends them)."""
    kind = shape.type_name
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParameterError(f"{path}: expected base64 data") from None
    if kind == "structure" and isinstance(value, dict):
        return {
            k: _decode_blobs(v, shape.members[k], f"{path}.{k}") if k in shape.members else v
            for k, v in value.items()
        }
    if kind == "list" and isinstance(value, list):
        return [_decode_blobs(v, shape.member, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _check_maximums(value: Any, shape: Any, path: str) -> None:
    """Refuse values over the model's ``max`` (botocore's validator checks only ``min``)."""
    limit = shape.metadata.get("max")
    kind = shape.type_name
    if limit is not None:
        size: float | None = None
        what = "items"
        if kind == "string" and isinstance(value, str):
            size, what = len(value), "characters"
        elif kind in ("list", "map") and isinstance(value, list | dict):
            size = len(value)
        elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
            size, what = value, ""
        if size is not None and size > limit:
            unit = f" {what}" if what else ""
            raise InvalidParameterError(f"{path}: expected at most {limit}{unit}, got {size}")
    if kind == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                _check_maximums(v, shape.members[k], f"{path}.{k}")
    elif kind == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            _check_maximums(v, shape.member, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        for k, v in value.items():
            _check_maximums(k, shape.key, f"{path} key")
            _check_maximums(v, shape.value, f"{path}.{k}")


def parse_request(operation: str, body: bytes) -> dict[str, Any]:
    """Validate ``body`` against the operation's input shape; return it with blobs decoded.

    Raises:
        InvalidParameterError: unknown operation, not JSON, or not the operation's shape
            (unknown, missing or mistyped fields: botocore's validator names them).
    """
    from botocore.validate import ParamValidator

    if operation not in OPERATIONS:
        raise InvalidParameterError(
            f"X-Amz-Target: unknown operation {operation!r}; expected one of {sorted(OPERATIONS)}"
        )
    try:
        params = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"request body: not JSON ({exc})") from None
    if not isinstance(params, dict):
        raise InvalidParameterError("request body: expected a JSON object")
    shape = _service_model().operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise InvalidParameterError(report.generate_report())
    _check_maximums(params, shape, operation)
    decoded: dict[str, Any] = _decode_blobs(params, shape, operation)
    return decoded


def call_operation(ctx: Any, operation: str, body: bytes) -> dict[str, Any]:
    """Run one AWS JSON operation and return its response dict."""
    params = parse_request(operation, body)
    handler = OPERATIONS[operation]
    accepted = _accepted(handler)
    unsupported = sorted(k for k in params if snake(k) not in accepted)
    if unsupported:
        raise InvalidParameterError(f"{operation}: {', '.join(unsupported)} not supported here")
    return handler(ctx, **{snake(k): v for k, v in params.items()})


@cache
def _accepted(handler: Callable[..., Any]) -> frozenset[str]:
    # "wait" is the CLI's local mode, never a request field
    return frozenset(inspect.signature(handler).parameters) - {"ctx", "wait"}
