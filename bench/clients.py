"""The boto3 Rekognition client the service benchmarks talk to a local server with."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def rekognition_client(
    url: str, key: str, secret: str, read_timeout: int = 120, pool: int = 10
) -> Any:
    """A client of the server at ``url``: no retries (a failure is counted, not hidden)."""
    return boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(
            retries={"max_attempts": 1}, read_timeout=read_timeout, max_pool_connections=pool
        ),
    )
