"""The exception tree maps to the service's names and back."""

from __future__ import annotations

import pytest

from customlabels import errors


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
