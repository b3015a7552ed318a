"""The exception tree maps to the service's names and back."""

from __future__ import annotations

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from customlabels import errors
from customlabels.service.remote import call_remote

CLASSES = [
    cls
    for cls in (getattr(errors, name) for name in errors.__all__)
    if isinstance(cls, type) and issubclass(cls, errors.CustomLabelsError)
]


@pytest.mark.parametrize(
    ("aws_type", "expected"),
    [
        ("InvalidParameterException", errors.InvalidParameterError),
        ("InvalidS3ObjectException", errors.InvalidS3ObjectError),
        ("ResourceNotReadyException", errors.ResourceNotReadyError),
        ("InternalServerError", errors.InternalServerError),
        ("NoSuchThingException", None),
    ],
)
def test_error_class_for_gives_the_most_general_class(
    aws_type: str, expected: type[errors.CustomLabelsError] | None
) -> None:
    assert errors.error_class_for(aws_type) is expected


def test_every_aws_type_is_an_exception_rekognition_declares() -> None:
    """boto3 raises ``client.exceptions.<aws_type>`` only for names in the service model."""
    model = botocore.session.get_session().get_service_model("rekognition")
    declared = {shape.name for shape in model.error_shapes}
    unknown = {cls.__name__: cls.aws_type for cls in CLASSES if cls.aws_type not in declared}
    assert not unknown, f"aws_type not in botocore's Rekognition model: {unknown}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_an_error_the_server_answers_comes_back_through_boto3(
    cls: type[errors.CustomLabelsError],
) -> None:
    """The wire round trip of ``customlabels ... --endpoint``: the server's ``__type`` reaches
    boto3 as a modelled exception and ``call_remote`` raises our class for it, message kept."""
    client = boto3.client(
        "rekognition",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_projects",
            service_error_code=cls.aws_type,
            service_message="what went wrong",
            http_status_code=cls.http_status,
        )
        with pytest.raises(errors.CustomLabelsError) as raised:
            call_remote("http://unused", "DescribeProjects", {}, client=client)
    assert type(raised.value) is errors.error_class_for(cls.aws_type)
    assert raised.value.aws_type == cls.aws_type
    assert raised.value.message == f"{cls.aws_type}: what went wrong"
    assert getattr(client.exceptions, cls.aws_type).__name__ == cls.aws_type
