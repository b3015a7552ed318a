"""Validation before training: the service's rules, per line, per box and per manifest.

:func:`validate_manifest` reads a Ground Truth manifest (and optionally its test manifest),
checks every line and box (:mod:`customlabels.formats.groundtruth`), every image file
(:mod:`customlabels.datasets.image_checks`: headers only, unless ``deep``) and the manifest as a
whole, and returns a :class:`ValidationReport` whose :meth:`~ValidationReport.summary` has the
service's shape. Where a service limit is arbitrary we accept the data and keep the service's
code as a warning (``docs/datasets.md`` lists each choice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Task
from customlabels.core.uris import s3_bucket_of
from customlabels.datasets.image_checks import check_image_file
from customlabels.errors import ManifestError
from customlabels.formats.checks import SERVICE_MAX_BOXES
from customlabels.formats.groundtruth import read_ground_truth
from customlabels.formats.refs import Fetch
from customlabels.formats.report import (
    MAX_INVALID_FRACTION,
    Issue,
    Severity,
    ValidationReport,
    annotate_line,
)
from customlabels.io.images import TRAINING_LIMITS, ImageLimits

__all__ = [
    "Issue",
    "Severity",
    "ValidationConfig",
    "ValidationReport",
    "annotated_lines",
    "check_dataset_images",
    "label_counts",
    "validate_dataset",
    "validate_manifest",
]


@dataclass(frozen=True)
class ValidationConfig:
    """The rules applied, with the service's values as defaults.

    Attributes:
        check_images: open every image's header (size, format, truncation); off: files are
            only required to exist.
        deep: also decode every pixel (finds corruption inside a file; much slower).
        images: per-image rules (bytes, sides, aspect ratio).
        max_invalid_fraction: more invalid lines than this fails the manifest.
        max_lines, max_manifest_bytes: the service's caps; over them we warn and go on.
        max_labels: the service's cap on labels; over it we warn and go on.
        min_test_label_overlap: share of a test set's labels that must be training labels.
    """

    check_images: bool = True
    deep: bool = False
    images: ImageLimits = TRAINING_LIMITS
    max_invalid_fraction: float = MAX_INVALID_FRACTION
    max_lines: int = 250_000
    max_manifest_bytes: int = 1024**3
    max_labels: int = 250
    min_test_label_overlap: float = 0.5


def label_counts(dataset: Dataset) -> dict[str, dict[str, int]]:
    """Per label: images carrying it (box or image-level) and boxes."""
    n = len(dataset.labels)
    images = np.zeros(n, dtype=np.int64)
    boxes = np.zeros(n, dtype=np.int64)
    for im in dataset.images:
        present = set(im.box_labels.tolist()) | set(im.image_labels)
        for k in present:
            images[k] += 1
        boxes += np.bincount(im.box_labels, minlength=n)
    return {
        name: {"images": int(images[k]), "boxes": int(boxes[k])}
        for k, name in enumerate(dataset.labels)
    }


def check_dataset_images(
    dataset: Dataset, report: ValidationReport, config: ValidationConfig | None = None
) -> Dataset:
    """Check each record's file; records with a bad image are reported and left out.

    A declared ``image_size`` that differs from the file's (EXIF-oriented) size is a warning.
    """
    config = config or ValidationConfig()
    kept = []
    for im in dataset.images:
        line = im.line if im.line is not None else 0
        if im.path is None:
            kept.append(im)
            continue
        result = check_image_file(im.path, config.images, config.deep)
        if not result.ok:
            why = result.message.removeprefix(f"{im.path.name}: ")  # the ref names the file
            report.line_error(
                line, result.code or "ERROR_INVALID_IMAGE", f"{im.ref}: {why}", "source-ref"
            )
            continue
        actual = result.size_wh
        if im.size_wh is not None and actual is not None and actual != im.size_wh:
            report.warning(
                line,
                "WARNING_IMAGE_SIZE_MISMATCH",
                f"image_size says {im.size_wh[0]}×{im.size_wh[1]} but the file is "
                f"{actual[0]}×{actual[1]} (after EXIF orientation); boxes are "
                "taken as given",
            )
        elif im.size_wh is None:
            im.size_wh = actual
        kept.append(im)
    return dataset.subset(kept)


def _manifest_rules(
    dataset: Dataset, report: ValidationReport, config: ValidationConfig, size_bytes: int
) -> None:
    if report.total_lines == 0:
        report.manifest_error(
            "ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT", "the manifest has no lines"
        )
        return
    report.check_invalid_fraction(config.max_invalid_fraction)
    if report.total_lines > config.max_lines:
        report.warning(
            None,
            "ERROR_MANIFEST_ROWS_EXCEEDS_MAXIMUM",
            f"{report.total_lines:,} lines; the service allows {config.max_lines:,}, all are used",
        )
    if size_bytes > config.max_manifest_bytes:
        report.warning(
            None,
            "ERROR_MANIFEST_SIZE_TOO_LARGE",
            f"{size_bytes:,} bytes; the service allows {config.max_manifest_bytes:,}, read anyway",
        )
    buckets = sorted({b for im in dataset if (b := s3_bucket_of(im.ref))})
    if len(buckets) > 1:
        report.warning(
            None,
            "ERROR_IMAGES_IN_MULTIPLE_S3_BUCKETS",
            f"images in {len(buckets)} buckets ({', '.join(buckets[:5])}); the service wants one, "
            "each is resolved here",
        )
    labelled = [name for name, c in report.labels.items() if c["images"] > 0]
    task = dataset.task if len(dataset) or report.use_case is None else report.use_case
    needed = 1 if task == Task.OBJECT_LOCALIZATION else 2
    if len(labelled) < needed:
        report.manifest_error(
            "ERROR_INSUFFICIENT_LABELS",
            f"{len(labelled)} label(s) with images; {task.value} needs at least {needed}",
        )
    if len(labelled) > config.max_labels:
        report.warning(
            None,
            "ERROR_MANIFEST_TOO_MANY_LABELS",
            f"{len(labelled)} labels; the service allows {config.max_labels}, all are used",
        )


def validate_dataset(
    path: Path | str,
    bucket_map: Mapping[str, Path | str] | None = None,
    fetch: Fetch | None = None,
    config: ValidationConfig | None = None,
    fmt: str = "groundtruth",
    images_dir: Path | str | None = None,
) -> tuple[Dataset, ValidationReport]:
    """Validate one manifest (or a dataset in another format); return what is usable.

    Args:
        fmt: a registered format name; the service's rules apply to any format, a "line" being
            the format's record (image entry, XML file, image file).
        images_dir: image folder for ``coco`` and ``voc`` sources.

    A source that cannot be read is reported as
    ``ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT``, not raised; a store that does not
    answer ``fetch`` raises :class:`~customlabels.errors.StoreUnavailableError` (not the
    source's fault: validate again later).
    """
    path = Path(path)
    config = config or ValidationConfig()
    report = ValidationReport(source=str(path))
    try:
        size_bytes = path.stat().st_size if path.is_file() else 0
        if fmt == "groundtruth":
            dataset, _ = read_ground_truth(path, bucket_map, fetch, report=report, check_files=True)
        else:
            from customlabels.formats import load

            dataset = load(fmt, path, report=report, images_dir=images_dir)
            for im in dataset.images:  # the Ground Truth parser reports this one itself
                if len(im.boxes) > SERVICE_MAX_BOXES:
                    report.warning(
                        im.line,
                        "ERROR_TOO_MANY_BOUNDING_BOXES",
                        f"{len(im.boxes)} boxes; the service allows {SERVICE_MAX_BOXES}, all kept",
                    )
    except (ManifestError, OSError) as exc:
        msg = exc.message if isinstance(exc, ManifestError) else f"{path}: {exc.strerror or exc}"
        report.manifest_error("ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT", msg)
        return Dataset(labels=LabelMap()), report
    if config.check_images:
        dataset = check_dataset_images(dataset, report, config)
    report.labels = label_counts(dataset)
    report.use_case = dataset.task if len(dataset) else report.use_case
    _manifest_rules(dataset, report, config, size_bytes)
    return dataset, report


def _cross_checks(
    train: Dataset, test: Dataset, report: ValidationReport, config: ValidationConfig
) -> None:
    if not len(test) or not len(train):
        return
    if train.task != test.task:
        report.manifest_error(
            "ERROR_USE_CASE_MISMATCH",
            f"training is {train.task.value} but testing is {test.task.value}",
        )
    train_labels = {n for n, c in label_counts(train).items() if c["images"]}
    test_labels = {n for n, c in label_counts(test).items() if c["images"]}
    if test_labels:
        overlap = len(test_labels & train_labels) / len(test_labels)
        if overlap < config.min_test_label_overlap:
            report.manifest_error(
                "ERROR_INSUFFICIENT_LABEL_OVERLAP",
                f"{overlap:.0%} of the test labels are training labels; expected at least "
                f"{config.min_test_label_overlap:.0%} "
                f"(test-only: {sorted(test_labels - train_labels)[:10]})",
            )

    def key(im: ImageRecord) -> str:
        return str(im.path.resolve()) if im.path is not None else im.ref

    shared = {key(im) for im in train} & {key(im) for im in test}
    if shared:
        report.manifest_error(
            "ERROR_TRAINING_TESTING_IMAGES_OVERLAP",
            f"{len(shared)} image(s) are in both the training and the test manifest, e.g. "
            f"{sorted(shared)[0]}",
        )


def validate_manifest(
    path: Path | str,
    test_path: Path | str | None = None,
    bucket_map: Mapping[str, Path | str] | None = None,
    fetch: Fetch | None = None,
    config: ValidationConfig | None = None,
    fmt: str = "groundtruth",
    images_dir: Path | str | None = None,
) -> ValidationReport:
    """Validate a training manifest (and its test manifest) as the service would.

    Args:
        path: the training manifest.
        test_path: the test manifest; its report is ``report.test`` and the cross-manifest
            rules (label overlap, no shared images, same use case) land in the main report.
        bucket_map: ``{bucket: folder}`` for refs to buckets held elsewhere.
        fetch: reads the objects of unmapped buckets (see
            :data:`~customlabels.formats.refs.Fetch`; the CLI's ``S3Fetch``).
        config: the rules (service defaults).
        fmt: the format of both sources (default ``groundtruth``).
        images_dir: image folder for ``coco``/``voc`` sources.

    Returns:
        The report; ``report.usable`` says whether training can go on.
    """
    config = config or ValidationConfig()
    train, report = validate_dataset(path, bucket_map, fetch, config, fmt, images_dir)
    if test_path is not None:
        test, test_report = validate_dataset(test_path, bucket_map, fetch, config, fmt, images_dir)
        report.test = test_report
        _cross_checks(train, test, report, config)
    return report


def annotated_lines(path: Path | str, report: ValidationReport) -> list[str]:
    """The manifest's lines with the problems found attached (see
    :func:`~customlabels.formats.report.annotate_line`); lines without problems are unchanged.
    """
    by_line = report.issues_by_line()
    text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    return [
        annotate_line(line, [i.detail() for i in by_line.get(n, [])])
        for n, line in enumerate(text, start=1)
    ]
