"""ARNs in the service's form, as boto3's own patterns expect them."""

from __future__ import annotations

import re

import botocore.session
import pytest

from customlabels.errors import InvalidParameterError
from customlabels.service.arns import check_name, dataset_arn, parse_arn, project_arn, version_arn

_SHAPES = botocore.session.get_session().get_service_model("rekognition").shape_for


@pytest.mark.parametrize(
    ("arn", "kind", "shape", "parsed"),
    [
        (
            project_arn("cells", 1764201600123),
            "project",
            "ProjectArn",
            ("cells", "", 1764201600123),
        ),
        (dataset_arn("cells", "TRAIN", 5), "dataset", "DatasetArn", ("cells", "train", 5)),
        (dataset_arn("a.b-c_d", "TEST", 7), "dataset", "DatasetArn", ("a.b-c_d", "test", 7)),
        (version_arn("cells", "v1.2", 9), "version", "ProjectVersionArn", ("cells", "v1.2", 9)),
    ],
)
def test_arns_match_the_service_model_and_parse_back(
    arn: str, kind: str, shape: str, parsed: tuple[str, str, int]
) -> None:
    assert arn.startswith("arn:aws:rekognition:local:000000000000:project/")
    assert re.match(_SHAPES(shape).metadata["pattern"], arn)
    got = parse_arn(arn, kind)
    assert (got.project, got.name, got.ts) == parsed


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        ("arn:aws:rekognition:local:000000000000:project/cells/1", "version"),
        ("arn:aws:rekognition:local:000000000000:project/cells/dataset/valid/1", "dataset"),
        ("arn:aws:s3:::bucket/key", "project"),
        ("", "project"),
        ("arn:aws:rekognition:local:000000000000:project/a b/1", "project"),
    ],
)
def test_wrong_kind_or_malformed_arns_are_invalid_parameters(arn: str, kind: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"expected a {kind} ARN"):
        parse_arn(arn, kind, field="X")


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", "x" * 256, "bad name"])
def test_names_that_could_not_be_folders_are_refused(name: str) -> None:
    with pytest.raises(InvalidParameterError, match="ProjectName"):
        check_name(name, "ProjectName")
