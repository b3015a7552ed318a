"""Helpers shared by the API tests: the live-server record and a real boto3 client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from customlabels.service import Context, ServiceSettings

KEY, SECRET = "AKIDCUSTOMLABELSTEST", "test-secret-access-key"


@dataclass
class Live:
    url: str
    ctx: Context
    settings: ServiceSettings


def make_client(url: str, key: str = KEY, secret: str = SECRET) -> Any:
    return boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )
