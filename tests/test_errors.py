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


# Names this server answers with that Rekognition's model does not declare (boto3 still raises
# a ClientError with that code).
OWN_NAMES = {"RequestTimeoutException"}


def test_every_aws_type_is_an_exception_rekognition_declares() -> None:
    """boto3 raises ``client.exceptions.<aws_type>`` only for names in the service model."""
    model = botocore.session.get_session().get_service_model("rekognition")
    declared = {shape.name for shape in model.error_shapes}
    unknown = {
        cls.__name__: cls.aws_type for cls in CLASSES if cls.aws_type not in declared | OWN_NAMES
    }
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
    if cls.aws_type not in OWN_NAMES:  # a modelled name: boto3 raises its own class for it
        assert getattr(client.exceptions, cls.aws_type).__name__ == cls.aws_type


@pytest.mark.parametrize(
    "cls",
    [
        cls
        for cls in (getattr(errors, n) for n in errors.__all__)
        if isinstance(cls, type) and cls is not errors.CustomLabelsError  # the abstract root
    ],
    ids=lambda cls: cls.__name__,
)
def test_every_class_answers_with_a_rekognition_name_its_inverse_generalises(
    cls: type[errors.CustomLabelsError],
) -> None:
    """A client turning ``__type`` back into an exception gets this class or an ancestor (never
    an unrelated branch that happens to share the name), and the name is one boto3 knows."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("rekognition")
    known = {n for n in model.shape_names if model.shape_for(n).metadata.get("exception")}
    assert cls.aws_type in known | OWN_NAMES
    general = errors.error_class_for(cls.aws_type)
    assert general is not None and issubclass(cls, general)
    assert 400 <= cls.http_status < 600
