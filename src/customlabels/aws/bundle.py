"""``customlabels export MODEL --out DIR --lambda``: a container-image build context and its stack.

``DIR`` holds everything ``sam build && sam deploy --guided`` needs:

- ``Dockerfile``: the AWS Lambda Python base image (the Python version of this install),
  ``requirements.txt`` installed into the task root, the ``customlabels`` package and the model;
  the handler is ``customlabels.aws.lambda_handler``;
- ``requirements.txt``: the base install's dependencies pinned to the versions installed here
  (no torch: the handler only runs ONNX Runtime);
- ``customlabels/``: this package's source (no byte code);
- ``model/``: the exported bundle (``model.onnx`` + ``model.json``);
- ``template.yaml``: the AWS SAM template of the blog's stack (bucket, queue with dead-letter
  queue, notification filter on the prefix, function, KMS key and policies).
"""

from __future__ import annotations

import re
import shutil
import sys
from importlib import metadata, resources
from pathlib import Path

import customlabels
from customlabels.errors import ConfigError, InvalidParameterError
from customlabels.pipeline.keys import normalize_prefix

__all__ = ["DIST_NAME", "base_requirements", "write_lambda_context"]

DIST_NAME = "customlabels"
# never in a Lambda image: training-only packages (a base dependency pulling one in is a bug)
_FORBIDDEN = {"torch", "torchvision"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")


def base_requirements() -> list[str]:
    """The base install's requirements, each pinned to its installed version.

    Read from this distribution's metadata (``pyproject.toml``'s ``dependencies``); the optional
    extras (``train``, ``dev``) are left out.

    Raises:
        ConfigError: customlabels is not installed as a distribution, a dependency is missing,
            or a training-only package would end up in the image.
    """
    try:
        requires = metadata.requires(DIST_NAME) or []
    except metadata.PackageNotFoundError:
        raise ConfigError(f"{DIST_NAME} is not installed (pip install .)") from None
    pins: list[str] = []
    for line in requires:
        spec, _, marker = line.partition(";")
        if "extra" in marker:
            continue
        match = _NAME.match(spec)
        if match is None:
            raise ConfigError(f"requirement {line!r}: cannot read its name")
        name, extras = match.group(1), match.group(2) or ""
        if name.lower() in _FORBIDDEN:
            raise ConfigError(f"requirement {name}: training-only, not for the Lambda image")
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise ConfigError(f"requirement {name}: not installed here, cannot pin it") from None
        pins.append(f"{name}{extras}=={version}")
    return sorted(pins, key=str.lower)


def _template(name: str) -> str:
    return resources.files("customlabels.aws").joinpath("templates", name).read_text()


def write_lambda_context(bundle_dir: Path, out_dir: Path, prefix: str = "test_images/") -> Path:
    """Write the build context around an exported bundle.

    Args:
        bundle_dir: the exported model (``model.onnx`` + ``model.json``), copied to
            ``out_dir/model``.
        out_dir: the build context folder (created; an earlier context there is replaced).
        prefix: the default ``InputPrefix`` of the template.

    Returns:
        ``out_dir``.
    """
    prefix = normalize_prefix(prefix)
    if '"' in prefix or "\n" in prefix:
        raise InvalidParameterError(f"--prefix: quotes and newlines not allowed, got {prefix!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    requirements = base_requirements()
    model_dir = out_dir / "model"
    if Path(bundle_dir).resolve() != model_dir.resolve():
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.copytree(bundle_dir, model_dir)
    package = Path(customlabels.__file__).parent
    shutil.rmtree(out_dir / "customlabels", ignore_errors=True)
    shutil.copytree(
        package, out_dir / "customlabels", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    (out_dir / "requirements.txt").write_text(
        "# the customlabels base install (no torch), pinned to the versions it was tested with\n"
        + "".join(f"{pin}\n" for pin in requirements)
    )
    (out_dir / "Dockerfile").write_text(_template("Dockerfile").replace("@PYTHON@", python))
    (out_dir / "template.yaml").write_text(_template("template.yaml").replace("@PREFIX@", prefix))
    return out_dir
