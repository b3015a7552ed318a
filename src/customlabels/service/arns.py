"""ARNs in the service's form, so client code that parses them keeps working.

- project: ``arn:aws:rekognition:local:000000000000:project/<name>/<ts>``
- dataset: ``arn:aws:rekognition:local:000000000000:project/<name>/dataset/<train|test>/<ts>``
- model version: ``arn:aws:rekognition:local:000000000000:project/<name>/version/<version>/<ts>``

``<ts>`` is the creation time in milliseconds since the epoch (the service uses a number too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from customlabels.errors import InvalidParameterError

__all__ = ["Arn", "check_name", "dataset_arn", "parse_arn", "project_arn", "version_arn"]

PREFIX = "arn:aws:rekognition:local:000000000000:"
_NAME = r"[a-zA-Z0-9_.\-]{1,255}"
_PATTERNS = {
    "project": re.compile(
        rf"^arn:[a-z\d-]+:rekognition:[a-z\d-]+:\d{{12}}:project/({_NAME})/(\d+)$"
    ),
    "dataset": re.compile(
        rf"^arn:[a-z\d-]+:rekognition:[a-z\d-]+:\d{{12}}:project/({_NAME})/dataset/(train|test)/(\d+)$"
    ),
    "version": re.compile(
        rf"^arn:[a-z\d-]+:rekognition:[a-z\d-]+:\d{{12}}:project/({_NAME})/version/({_NAME})/(\d+)$"
    ),
}
NAME_RE = re.compile(rf"^{_NAME}$")


@dataclass(frozen=True)
class Arn:
    """A parsed ARN: ``kind`` is ``project``, ``dataset`` or ``version``."""

    kind: str
    project: str
    name: str  # dataset type (train/test) or version name; "" for a project
    ts: int


def project_arn(name: str, ts_ms: int) -> str:
    return f"{PREFIX}project/{name}/{ts_ms}"


def dataset_arn(project: str, dataset_type: str, ts_ms: int) -> str:
    return f"{PREFIX}project/{project}/dataset/{dataset_type.lower()}/{ts_ms}"


def version_arn(project: str, version: str, ts_ms: int) -> str:
    return f"{PREFIX}project/{project}/version/{version}/{ts_ms}"


def parse_arn(arn: str, kind: str, field: str = "Arn") -> Arn:
    """Parse ``arn`` as a ``kind`` ARN.

    Raises:
        InvalidParameterError: not an ARN of that kind (names ``field``).
    """
    match = _PATTERNS[kind].match(arn or "")
    if not match:
        raise InvalidParameterError(
            f"{field}: expected a {kind} ARN like {_example(kind)}, got {arn!r}"
        )
    groups = match.groups()
    if kind == "project":
        return Arn(kind, groups[0], "", int(groups[1]))
    return Arn(kind, groups[0], groups[1], int(groups[2]))


def check_name(name: str, field: str) -> str:
    """Check a project or version name; ``.`` and ``..`` are refused (names become folders)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or set(name) == {"."}:
        raise InvalidParameterError(
            f"{field}: expected 1–255 characters of [a-zA-Z0-9_.-], got {name!r}"
        )
    return name


def _example(kind: str) -> str:
    return {
        "project": project_arn("NAME", 1),
        "dataset": dataset_arn("NAME", "train", 1),
        "version": version_arn("NAME", "VERSION", 1),
    }[kind]
