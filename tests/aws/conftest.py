"""Fixtures of the AWS tests: moto's server (S3, SQS, KMS over the wire) and the blog's stack.

moto runs as its own process on a free 127.0.0.1 port (``moto_server``), never as patched
clients: the worker processes and the Lambda bundle talk to it over HTTP like to AWS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from customlabels.pipeline.local_servers import moto_server

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
PREFIX = "test_images/"


@pytest.fixture(scope="session")
def moto() -> Iterator[str]:
    """moto's server endpoint; the AWS variables of the test process point at fake credentials."""
    with pytest.MonkeyPatch.context() as env, moto_server() as endpoint:
        for name, value in AWS_ENV.items():
            env.setenv(name, value)
        yield endpoint


@dataclass
class Stack:
    """The blog's stack on moto: a versioned bucket notifying a queue that has a DLQ."""

    endpoint: str
    s3: Any
    sqs: Any
    kms: Any
    bucket: str
    queue_url: str
    dlq_url: str

    def writes(self, key: str) -> int:
        """PutObject calls that created ``key`` (bucket versioning counts every write)."""
        versions = self.s3.list_object_versions(Bucket=self.bucket, Prefix=key)
        return sum(1 for v in versions.get("Versions", []) if v["Key"] == key)

    def outputs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".json"):
                    out[obj["Key"]] = obj
        return out

    def depth(self, url: str | None = None) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )


def client(service: str, endpoint: str) -> Any:
    return boto3.session.Session().client(service, endpoint_url=endpoint, **_creds())


def _creds() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }


def make_stack(endpoint: str, visibility_s: int = 30, max_receive: int = 3) -> Stack:
    s3, sqs, kms = client("s3", endpoint), client("sqs", endpoint), client("kms", endpoint)
    name = f"cl-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
    queue = sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": str(visibility_s), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PREFIX}]}},
                }
            ]
        },
    )
    return Stack(endpoint, s3, sqs, kms, name, queue, dlq)


@pytest.fixture()
def stack(moto: str) -> Stack:
    return make_stack(moto)
