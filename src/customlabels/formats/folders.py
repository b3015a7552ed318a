"""Folder-name labels: ``root/<label>/<image>`` (Custom Labels' "label from S3 folder").

Each top-level folder under ``root`` is a label; every ``.jpg``/``.jpeg``/``.png`` file below
it (at any depth) is an image with that label. Files with other suffixes are skipped with a
warning; image content is checked by validation, not here. Labels are in folder-name order.
Writing places each image (hard link or copy) in the folder of each of its labels.
"""

from __future__ import annotations

from pathlib import Path

from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Task
from customlabels.errors import InvalidParameterError, ManifestError, UnsafePathError
from customlabels.formats.checks import check_label_name
from customlabels.formats.files import IMAGE_SUFFIXES, place_image
from customlabels.formats.registry import register_format
from customlabels.formats.report import ValidationReport
from customlabels.io.paths import safe_join

__all__ = ["load_folders", "save_folders"]


def load_folders(path: Path | str, report: ValidationReport | None = None) -> Dataset:
    """Load ``root/<label>/...`` images as an image-level-label dataset.

    Records' ``ref`` is the path relative to ``root`` (``bee/x.jpg``); ``line`` numbers follow
    the sorted file order. Symlinks leading out of ``root`` are refused.
    """
    root = Path(path)
    if not root.is_dir():
        raise ManifestError(f"{root}: expected a folder with one subfolder per label")
    report = report if report is not None else ValidationReport(source=str(root))
    labels = LabelMap()
    records: list[ImageRecord] = []
    number = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = check_label_name(folder.name, report, None, folder.name)
        if name is None:
            continue
        for file in sorted(folder.rglob("*")):
            if not file.is_file() or file.name.startswith("."):
                continue
            number += 1
            ref = file.relative_to(root).as_posix()
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                report.line_error(
                    number,
                    "ERROR_INVALID_IMAGE",
                    f"{ref}: not a .jpg/.jpeg/.png file; skipped",
                    ref,
                )
                continue
            try:
                resolved = safe_join(root, ref)
            except UnsafePathError as exc:
                report.line_error(number, "ERROR_INVALID_SOURCE_REF_FORMAT", exc.message, ref)
                continue
            records.append(
                ImageRecord(ref=ref, path=resolved, image_labels=[labels.add(name)], line=number)
            )
    report.total_lines += number
    report.use_case = Task.IMAGE_LEVEL_LABELS
    return Dataset(labels=labels, images=records)


def save_folders(dataset: Dataset, path: Path | str) -> None:
    """Place every image under ``path/<label>/`` for each of its image-level labels."""
    if dataset.task != Task.IMAGE_LEVEL_LABELS:
        raise InvalidParameterError(
            "folder labels hold image-level labels; expected a classification dataset, got boxes"
        )
    out = Path(path)
    for im in dataset.images:
        if im.path is None:
            raise InvalidParameterError(f"{im.ref}: no local file to place in a label folder")
        for label_id in im.image_labels:
            place_image(im.path, out / dataset.labels.name_of(label_id) / im.name)


register_format(
    "folders",
    load=load_folders,
    save=save_folders,
    description="root/<label>/*.jpg: the folder name is the image's label",
)
