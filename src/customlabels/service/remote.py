"""Talking to a running ``customlabels serve`` with boto3's ``rekognition`` client.

Used by the CLI's ``--endpoint`` mode (and by ``customlabels detect MODEL_ARN --endpoint URL``).
Credentials: ``CUSTOMLABELS_ACCESS_KEY_ID`` / ``CUSTOMLABELS_SECRET_ACCESS_KEY``, else the usual
AWS ones (environment, ``~/.aws``); region ``AWS_REGION`` or ``us-east-1`` (any is accepted).
"""

from __future__ import annotations

import os
from typing import Any

from customlabels.errors import InternalServerError, error_class_for

__all__ = ["call_remote", "detect_remote", "rekognition_client"]


def rekognition_client(endpoint: str) -> Any:
    """A boto3 ``rekognition`` client for the server at ``endpoint``."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "rekognition",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("CUSTOMLABELS_ACCESS_KEY_ID"),
        aws_secret_access_key=os.environ.get("CUSTOMLABELS_SECRET_ACCESS_KEY"),
        config=Config(retries={"max_attempts": 2}, read_timeout=300),
    )


def call_remote(endpoint: str, operation: str, params: dict[str, Any], client: Any = None) -> Any:
    """Call ``operation`` (e.g. ``"CreateProject"``) with the request ``params``.

    Returns:
        The response without ``ResponseMetadata``.

    Raises:
        CustomLabelsError: the subclass named by the server's ``__type`` (message kept).
    """
    from botocore import xform_name  # boto3's own rule for client method names
    from botocore.exceptions import ClientError

    client = client or rekognition_client(endpoint)
    try:
        result: dict[str, Any] = getattr(client, xform_name(operation))(**params)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "")), str(err.get("Message", ""))
        raise (error_class_for(code) or InternalServerError)(f"{code}: {message}") from None
    result.pop("ResponseMetadata", None)
    return result


def detect_remote(
    endpoint: str,
    version_arn: str,
    data: bytes,
    min_confidence: float | None = None,
    max_results: int | None = None,
    client: Any = None,
) -> dict[str, Any]:
    """DetectCustomLabels on a running server: ``{"CustomLabels": [...]}`` (confidence 0–100)."""
    params: dict[str, Any] = {"ProjectVersionArn": version_arn, "Image": {"Bytes": data}}
    if min_confidence is not None:
        params["MinConfidence"] = min_confidence
    if max_results is not None:
        params["MaxResults"] = max_results
    result: dict[str, Any] = call_remote(endpoint, "DetectCustomLabels", params, client)
    return result
