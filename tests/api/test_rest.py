"""The plain REST API under /v1: Basic or SigV4 auth, multipart detection, OpenAPI docs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.errors import InvalidImageError
from customlabels.service import ServiceSettings, open_context, projects, versions
from customlabels.service.remote import detect_remote

from ._live import KEY, SECRET, make_client

AUTH = (KEY, SECRET)


@pytest.fixture
def rest(tmp_path: Path, tiny_detector_dir: Path) -> Iterator[str]:
    settings = ServiceSettings(home=tmp_path / "home", access_key_id=KEY, secret_access_key=SECRET)
    ctx = open_context(settings)
    project = projects.create_project(ctx, "bees")["ProjectArn"]
    versions.import_model_version(ctx, project, "v1", tiny_detector_dir)
    try:
        with serve_in_thread(create_app(settings, ctx)) as url:
            yield url
    finally:
        ctx.close()


def test_rest_lists_starts_detects_and_stops(rest: str, bees_manifest: Path) -> None:
    listed = httpx.get(f"{rest}/v1/projects", auth=AUTH).json()
    assert [p["ProjectArn"].split("/")[1] for p in listed["ProjectDescriptions"]] == ["bees"]
    image_ref = json.loads(bees_manifest.read_text().splitlines()[0])["source-ref"]
    image = (bees_manifest.parent / image_ref.split("/", 3)[3]).read_bytes()
    detect = f"{rest}/v1/projects/bees/versions/v1/detect"
    files = {"image": ("bee.jpg", image, "image/jpeg")}
    refused = httpx.post(detect, files=files, auth=AUTH)
    assert refused.status_code == 400
    assert refused.json()["__type"] == "ResourceNotReadyException", refused.text
    started = httpx.post(
        f"{rest}/v1/projects/bees/versions/v1/start?units=1", auth=AUTH, timeout=60
    )
    assert started.json() == {"Status": "STARTING"}
    for _ in range(300):
        status = httpx.get(f"{rest}/v1/projects/bees/versions", auth=AUTH).json()
        if status["ProjectVersionDescriptions"][0]["Status"] == "RUNNING":
            break
    found = httpx.post(detect, files=files, data={"min_confidence": "0"}, auth=AUTH, timeout=60)
    assert found.status_code == 200, found.text
    labels = found.json()["CustomLabels"]
    assert labels and {"Name", "Confidence", "Geometry"} <= set(labels[0])
    capped = httpx.post(
        detect, files=files, data={"min_confidence": "0", "max_results": "1"}, auth=AUTH
    )
    assert capped.json()["CustomLabels"] == labels[:1]
    # the same through boto3, as `customlabels detect ARN --endpoint URL` does
    arn = status["ProjectVersionDescriptions"][0]["ProjectVersionArn"]
    remote = detect_remote(rest, arn, image, min_confidence=0, client=make_client(rest))
    assert remote["CustomLabels"] == labels
    with pytest.raises(InvalidImageError):
        detect_remote(rest, arn, b"not an image", client=make_client(rest))
    bad = httpx.post(detect, files={"image": ("x.gif", b"GIF89a....", "image/gif")}, auth=AUTH)
    assert bad.json()["__type"] == "InvalidImageFormatException"
    assert httpx.post(f"{rest}/v1/projects/bees/versions/v1/stop", auth=AUTH).json() == {
        "Status": "STOPPING"
    }


def test_rest_refuses_wrong_or_missing_credentials(rest: str) -> None:
    for auth in [None, (KEY, "wrong"), ("someone", SECRET)]:
        response = httpx.get(f"{rest}/v1/projects", auth=auth)
        assert response.status_code == 400
        assert response.json()["__type"] == "AccessDeniedException"
    missing = httpx.delete(f"{rest}/v1/projects/nope", auth=AUTH)
    assert missing.json()["__type"] == "ResourceNotFoundException"


def test_openapi_documents_the_rest_routes(rest: str) -> None:
    schema = httpx.get(f"{rest}/openapi.json").json()
    assert "/v1/projects/{project}/versions/{version}/detect" in schema["paths"]
    assert "/" not in schema["paths"]  # the AWS JSON endpoint is for SDKs, not documented here
    assert httpx.get(f"{rest}/docs").status_code == 200
