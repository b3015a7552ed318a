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


def test_every_class_round_trips_to_a_class_with_its_name() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type):
            found = errors.error_class_for(cls.aws_type)
            assert found is not None and found.aws_type == cls.aws_type, name
