"""Fuzzing a live server: Schemathesis over every REST route of ``/openapi.json``, and
hypothesis over the AWS JSON 1.1 operations with requests built from botocore's own
``rekognition`` model. Whatever comes in: never a 500, never a traceback, every error in the
service's shape (``{"__type": <a Rekognition exception>, "message": ...}``)."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customlabels import errors
from customlabels.api import create_app
from customlabels.api.awsjson import OPERATIONS, TARGET_PREFIX
from customlabels.api.server import serve_in_thread
from customlabels.service import ServiceSettings, datasets, open_context, projects, versions

from ._live import KEY, SECRET

MODEL = botocore.session.get_session().get_service_model("rekognition")
# the service's error names: Rekognition's exception shapes, and this server's own tree
ERROR_NAMES = {n for n in MODEL.shape_names if MODEL.shape_for(n).metadata.get("exception")} | {
    getattr(errors, name).aws_type for name in errors.__all__ if name.endswith("Error")
}
MANIFEST = {"Bucket": "bccd-demo", "Name": "manifests/train.manifest"}


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory, bccd_buckets: Path, tiny_detector_dir: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """A server with a project (TRAIN dataset, a RUNNING version) for requests to find; its
    training command fails at once, so a fuzzed CreateProjectVersion trains nothing."""
    settings = ServiceSettings(
        home=tmp_path_factory.mktemp("fuzz") / "home",
        buckets_dir=bccd_buckets,
        access_key_id=KEY,
        secret_access_key=SECRET,
        train_command=[sys.executable, "-c", "raise SystemExit(1)"],
    )
    ctx = open_context(settings)
    try:
        project = projects.create_project(ctx, "bees")["ProjectArn"]
        dataset = datasets.create_dataset(
            ctx, project, "TRAIN", {"GroundTruthManifest": {"S3Object": MANIFEST}}
        )["DatasetArn"]
        version = versions.import_model_version(ctx, project, "v1", tiny_detector_dir)
        arn = version["ProjectVersionArn"]
        versions.start_project_version(ctx, arn, 1, wait=True)
        known = {"ProjectArn": project, "DatasetArn": dataset, "ProjectVersionArn": arn}
        with serve_in_thread(create_app(settings, ctx)) as url:
            yield url, known
    finally:
        ctx.close()


def check_service_shape(status: int, text: str) -> None:
    """The contract of every response: no 5xx, no traceback, errors in the service's shape."""
    assert status < 500, text
    assert "Traceback" not in text, text
    if status >= 400:
        body = json.loads(text)
        assert set(body) == {"__type", "message"}, text
        assert body["__type"] in ERROR_NAMES, text
        assert isinstance(body["message"], str) and body["message"], text


# --- Schemathesis: every route of /openapi.json ---------------------------------------------

REST_ROUTES = {
    "/v1/projects",
    "/v1/projects/{project}",
    "/v1/projects/{project}/versions",
    "/v1/projects/{project}/versions/{version}/start",
    "/v1/projects/{project}/versions/{version}/stop",
    "/v1/projects/{project}/versions/{version}/detect",
}


def _service_shape(ctx: Any, response: Any, case: Any) -> None:
    check_service_shape(response.status_code, response.text)


def test_rest_routes_under_schemathesis(fuzz_server: tuple[str, dict[str, str]]) -> None:
    """Every operation of the served ``/openapi.json``, signed in (Basic) and not."""
    url, _ = fuzz_server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == REST_ROUTES

    for operation in operations:

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            for auth in ((KEY, SECRET), None):
                case.call_and_validate(
                    base_url=url,
                    auth=auth,
                    timeout=60,
                    checks=[schemathesis.checks.not_a_server_error, _service_shape],
                )

        fuzz()


# --- hypothesis: the AWS JSON 1.1 operations from botocore's model ---------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _value(shape: Any, known: dict[str, str], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for a botocore shape: mostly well-typed (in and out of its bounds), sometimes
    any JSON at all; ARNs of the server's real resources among the strings."""
    kind = shape.type_name
    if kind == "structure" and depth < 5:
        members = {k: _value(v, known, depth + 1) for k, v in shape.members.items()}
        required = {k: members.pop(k) for k in shape.required_members if k in members}
        typed: st.SearchStrategy[Any] = st.fixed_dictionaries(required, optional=members)
    elif kind == "list" and depth < 5:
        typed = st.lists(_value(shape.member, known, depth + 1), max_size=3)
    elif kind == "map" and depth < 5:
        keys = st.text(max_size=40) | st.sampled_from(["customlabels:time-budget"])
        typed = st.dictionaries(keys, _value(shape.value, known, depth + 1), max_size=3)
    elif kind == "string":
        choices = [st.text(max_size=40), st.sampled_from(sorted(known.values()))]
        if shape.enum:
            choices.append(st.sampled_from(shape.enum))
        typed = st.one_of(*choices)
    elif kind in ("integer", "long"):
        typed = st.integers(min_value=-(2**40), max_value=2**40) | st.integers(-2, 120)
    elif kind in ("float", "double"):
        typed = st.floats(allow_nan=False, allow_infinity=False) | st.floats(-1, 101)
    elif kind == "boolean":
        typed = st.booleans()
    elif kind == "blob":
        raw = st.binary(max_size=64) | st.sampled_from([b"\xff\xd8\xff" + b"\0" * 32, b""])
        typed = raw.map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=12)
    elif kind == "timestamp":
        typed = st.floats(allow_nan=False) | st.text(max_size=12)
    else:
        typed = _JSON
    return st.one_of(typed, typed, typed, _JSON)


def _request(draw: Any, known: dict[str, str]) -> tuple[str, bytes]:
    served = sorted(OPERATIONS)
    unserved = sorted(set(MODEL.operation_names) - set(OPERATIONS))
    made_up = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20)
    operation = draw(st.sampled_from(served) | st.sampled_from(unserved) | made_up)
    if operation in MODEL.operation_names:
        body = draw(_value(MODEL.operation_model(operation).input_shape, known))
    else:
        body = draw(_JSON)
    text = json.dumps(body)
    if draw(st.integers(0, 9)) == 0:  # sometimes not JSON at all
        text = text[: draw(st.integers(0, len(text)))] + draw(st.text(max_size=4))
    return operation, text.encode()


def _signed(url: str, operation: str, body: bytes) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=f"{url}/",
        data=body,
        headers={
            "X-Amz-Target": f"{TARGET_PREFIX}{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials(KEY, SECRET), "rekognition", "us-east-1").add_auth(request)
    return dict(request.headers.items())


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_aws_json_operations_under_hypothesis(
    fuzz_server: tuple[str, dict[str, str]], data: st.DataObject
) -> None:
    url, known = fuzz_server
    operation, body = _request(data.draw, known)
    with httpx.Client(timeout=60) as http:
        response = http.post(f"{url}/", content=body, headers=_signed(url, operation, body))
    check_service_shape(response.status_code, response.text)
    if response.status_code == 200:
        output = MODEL.operation_model(operation).output_shape
        assert set(response.json()) <= set(output.members if output else ()), response.text
