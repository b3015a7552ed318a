"""The service's CLI: local mode on a home folder, and --endpoint mode against a live server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.cli.main import app
from customlabels.errors import AccessDeniedError, InvalidParameterError
from customlabels.service import ServiceSettings, open_context

runner = CliRunner()


def _run(*args: str) -> dict[str, object]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    parsed: dict[str, object] = json.loads(result.output)
    return parsed


def test_local_mode_projects_datasets_models_export(
    tmp_path: Path, bccd_buckets: Path, tiny_detector_dir: Path
) -> None:
    home = str(tmp_path / "home")
    project = _run("projects", "create", "cells", "--home", home)["ProjectArn"]
    assert isinstance(project, str) and "/cells/" in project
    dataset = _run(
        "datasets",
        "create",
        "cells",
        "--manifest",
        "s3://bccd-demo/manifests/train.manifest",
        "--buckets",
        str(bccd_buckets),
        "--home",
        home,
    )["DatasetArn"]
    stats = _run("datasets", "describe", str(dataset), "--home", home)["DatasetDescription"]
    assert stats["DatasetStats"]["TotalEntries"] == 12  # type: ignore[index]
    test = _run("datasets", "create", "cells", "--type", "test", "--home", home)["DatasetArn"]
    _run("datasets", "distribute", str(dataset), str(test), "--home", home)
    imported = _run("models", "import", "cells", "v1", str(tiny_detector_dir), "--home", home)
    version = str(imported["ProjectVersionArn"])
    described = _run("models", "describe", "cells", "--version", "v1", "--home", home)
    assert described["ProjectVersionDescriptions"][0]["Status"] == "TRAINING_COMPLETED"  # type: ignore[index]
    out = tmp_path / "bundle"
    result = runner.invoke(app, ["export", version, "--out", str(out), "--home", home])
    assert result.exit_code == 0, result.output
    assert (out / "model.onnx").is_file() and (out / "model.json").is_file()
    listed = _run("projects", "list", "--home", home)["ProjectDescriptions"]
    assert [p["ProjectArn"] for p in listed] == [project]  # type: ignore[index]
    # serving needs a server
    failed = runner.invoke(app, ["models", "start", version])
    assert isinstance(failed.exception, InvalidParameterError)
    assert "--endpoint" in failed.exception.message
    _run("models", "delete", version, "--home", home)
    _run("projects", "delete", "cells", "--home", home)
    assert _run("projects", "list", "--home", home)["ProjectDescriptions"] == []


def test_endpoint_mode_signs_with_the_configured_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ServiceSettings(
        home=tmp_path / "server", access_key_id="AKIDCLI", secret_access_key="cli-secret"
    )
    ctx = open_context(settings)
    try:
        with serve_in_thread(create_app(settings, ctx)) as url:
            monkeypatch.setenv("CUSTOMLABELS_ACCESS_KEY_ID", "AKIDCLI")
            monkeypatch.setenv("CUSTOMLABELS_SECRET_ACCESS_KEY", "cli-secret")
            arn = _run("projects", "create", "remote", "--endpoint", url)["ProjectArn"]
            listed = _run("projects", "list", "--endpoint", url)["ProjectDescriptions"]
            assert [p["ProjectArn"] for p in listed] == [arn]  # type: ignore[index]
            monkeypatch.setenv("CUSTOMLABELS_SECRET_ACCESS_KEY", "wrong")
            denied = runner.invoke(app, ["projects", "list", "--endpoint", url])
            assert isinstance(denied.exception, AccessDeniedError)
            assert "AccessDeniedException" in denied.exception.message
    finally:
        ctx.close()


def test_export_int8(tmp_path: Path, tiny_detector_dir: Path, bees_manifest: Path) -> None:
    import inspect

    from customlabels.cli.service_cmd import export
    from customlabels.core.model_card import ModelCard
    from customlabels.service.int8 import DEFAULT_CALIBRATION_IMAGES

    out = tmp_path / "int8"
    args = ["export", str(tiny_detector_dir), "--out", str(out), "--int8"]
    manifest = ["--calibration-manifest", str(bees_manifest)]
    result = runner.invoke(app, [*args, "--calibration-images", "3", *manifest])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.strip() == str(out)
    card = ModelCard.load(out)
    assert card.precision == "int8" and card.quantization["calibration"]["images"] == 3
    # the option's default is the library's
    default = inspect.signature(export).parameters["calibration_images"].default
    assert default == DEFAULT_CALIBRATION_IMAGES
    # errors are clear and write nothing
    failed = runner.invoke(app, [*args[:3], str(tmp_path / "x"), "--int8"])
    assert isinstance(failed.exception, InvalidParameterError)
    assert "--calibration-manifest" in failed.exception.message
    failed = runner.invoke(app, [*args[:3], str(tmp_path / "y"), *manifest])
    assert isinstance(failed.exception, InvalidParameterError)
    assert "go with --int8" in failed.exception.message
    failed = runner.invoke(app, [*args, "--calibration-images", "0", *manifest])
    assert failed.exit_code == 2 and not (tmp_path / "x").exists()
