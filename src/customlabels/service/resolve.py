"""Turn what a user names as MODEL into a model folder, and export a model as a bundle.

MODEL may be a model folder (``customlabels train --out DIR``), an exported bundle (the same two
files, ``model.onnx`` + ``model.json``), or a model version ARN looked up in the catalog of a
home folder. ``customlabels detect`` and ``customlabels export`` call these.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from customlabels.core.model_card import CARD_NAME, ONNX_NAME, ModelCard
from customlabels.errors import InvalidParameterError, ResourceNotFoundError, ResourceNotReadyError
from customlabels.service.arns import parse_arn
from customlabels.service.catalog import Catalog, VersionRow
from customlabels.service.settings import DEFAULT_HOME, ServiceSettings

__all__ = ["export_model", "is_version_arn", "resolve_model", "write_bundle"]


def is_version_arn(ref: str) -> bool:
    return str(ref).startswith("arn:") and "/version/" in str(ref)


def resolve_model(
    ref: str | Path, home: Path | None = None, database_url: str | None = None
) -> Path:
    """The model folder behind ``ref``.

    Args:
        ref: a model folder / exported bundle path, or a model version ARN.
        home: the service's home folder (default ``~/.customlabels``) whose catalog knows ARNs.
        database_url: the catalog's URL when it is not the home's SQLite file.

    Returns:
        A folder holding ``model.onnx`` and ``model.json``.

    Raises:
        InvalidParameterError: a path that is not a model folder.
        ResourceNotFoundError: an ARN the catalog does not know.
        ResourceNotReadyError: a version whose training has not produced a model.
    """
    text = str(ref)
    if is_version_arn(text):
        parse_arn(text, "version", "MODEL")
        settings = ServiceSettings(
            home=home or DEFAULT_HOME.expanduser(), database_url=database_url
        )
        if database_url is None and not (settings.home / "catalog.db").is_file():
            raise ResourceNotFoundError(f"{text}: no catalog at {settings.home} (use --home)")
        catalog = Catalog(settings.db_url)
        try:
            with catalog.session() as s:
                row = s.scalars(select(VersionRow).where(VersionRow.arn == text)).first()
                if row is None:
                    raise ResourceNotFoundError(f"{text}: no such model version in {settings.home}")
                model_dir, status = Path(row.model_dir), row.status
        finally:
            catalog.close()
        if not (model_dir / ONNX_NAME).is_file():
            raise ResourceNotReadyError(f"{text}: {status}, no trained model yet")
        return model_dir
    path = Path(text).expanduser()
    if not (path / CARD_NAME).is_file() or not (path / ONNX_NAME).is_file():
        raise InvalidParameterError(
            f"{path}: expected a model folder or bundle ({ONNX_NAME} + {CARD_NAME}) or a model "
            "version ARN"
        )
    return path


def export_model(
    ref: str | Path, out_dir: Path, home: Path | None = None, database_url: str | None = None
) -> Path:
    """Write a self-contained bundle (``model.onnx`` + ``model.json``) to ``out_dir``.

    The bundle runs with the base install only: ``customlabels detect OUT_DIR IMAGE``. The card
    is validated first and carries the labels and each label's assumed threshold. ``out_dir``
    is filled atomically (see :func:`write_bundle`).
    """
    src = resolve_model(ref, home, database_url)
    ModelCard.load(src)  # refuse to export a card this version cannot read

    def copy(tmp: Path) -> None:
        for name in (ONNX_NAME, CARD_NAME):
            shutil.copy2(src / name, tmp / name)

    return write_bundle(out_dir, copy)


def write_bundle(out_dir: Path, fill: Callable[[Path], None]) -> Path:
    """Fill ``out_dir`` atomically: ``fill(tmp)`` writes the bundle into a fresh folder beside
    it, which then replaces ``out_dir``; an existing bundle there is replaced, any other
    non-empty folder is refused, and nothing is left behind when ``fill`` fails."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / CARD_NAME).is_file():
        raise InvalidParameterError(f"--out {out_dir}: not empty and not a model bundle")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir.parent))
    try:
        fill(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
