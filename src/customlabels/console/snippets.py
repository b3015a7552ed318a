"""Code snippets for a model version, filled with its real ARN and the server's endpoint.

``tests/console/test_snippets.py`` runs each one against a live server.
"""

from __future__ import annotations

import shlex

__all__ = ["snippets"]


def snippets(endpoint: str, project: str, version: str, arn: str) -> dict[str, str]:
    """``{"boto3": ..., "AWS CLI": ..., "curl": ...}``: detect custom labels in ``frame.jpg``.

    Credentials come from the environment (``CUSTOMLABELS_ACCESS_KEY_ID`` /
    ``CUSTOMLABELS_SECRET_ACCESS_KEY``), never from the page.
    """
    boto3 = f"""import os

import boto3

rek = boto3.client(
    "rekognition",
    endpoint_url={endpoint!r},
    region_name="us-east-1",
    aws_access_key_id=os.environ["CUSTOMLABELS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["CUSTOMLABELS_SECRET_ACCESS_KEY"],
)
with open("frame.jpg", "rb") as f:
    response = rek.detect_custom_labels(
        ProjectVersionArn={arn!r},
        Image={{"Bytes": f.read()}},
        MinConfidence=50,
    )
for label in response["CustomLabels"]:
    print(label["Name"], round(label["Confidence"], 1), label.get("Geometry", {{}}))
"""
    cli = (
        "AWS_ACCESS_KEY_ID=$CUSTOMLABELS_ACCESS_KEY_ID "
        "AWS_SECRET_ACCESS_KEY=$CUSTOMLABELS_SECRET_ACCESS_KEY \\\n"
        f"aws rekognition detect-custom-labels --endpoint-url {shlex.quote(endpoint)} "
        "--region us-east-1 \\\n"
        f"  --project-version-arn {shlex.quote(arn)} \\\n"
        "  --image-bytes fileb://frame.jpg --min-confidence 50"
    )
    url = f"{endpoint}/v1/projects/{project}/versions/{version}/detect"
    curl = (
        'curl -u "$CUSTOMLABELS_ACCESS_KEY_ID:$CUSTOMLABELS_SECRET_ACCESS_KEY" '
        "-F image=@frame.jpg -F min_confidence=50 \\\n"
        f"  {shlex.quote(url)}"
    )
    return {"boto3": boto3, "AWS CLI": cli, "curl": curl}
