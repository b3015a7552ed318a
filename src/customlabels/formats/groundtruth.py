"""SageMaker Ground Truth manifests (JSON Lines), the service's own dataset format.

A line is ``{"source-ref": "s3://bucket/key", "<attr>": ..., "<attr>-metadata": {...}}`` with any
number of label attributes (any names):

- bounding boxes (``type: groundtruth/object-detection``): ``<attr>`` holds ``image_size``
  ``[{width, height, depth}]`` and ``annotations`` ``[{class_id, left, top, width, height}]`` in
  integer pixels (``ltwh``); the metadata's ``class-map`` names the ids;
- image-level labels (``type: groundtruth/image-classification``): ``<attr>`` is an integer and
  the metadata's ``class-name`` names the label. Several such attributes make a multi-label line.

:func:`parse_ground_truth` and :func:`dataset_to_ground_truth` are pure converters;
:func:`load_ground_truth` / :func:`save_ground_truth` add files and ``source-ref`` resolution.
Problems are reported with the service's codes (see ``docs/datasets.md``), never raised per line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from customlabels.core.boxes import xyxy_to_ltwh
from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Task
from customlabels.core.uris import s3_key_of
from customlabels.errors import (
    CustomLabelsError,
    InvalidParameterError,
    ManifestError,
    StoreUnavailableError,
    UnsafePathError,
)
from customlabels.formats.files import size_of
from customlabels.formats.gt_lines import (
    CLASSIFICATION_TYPE,
    DETECTION_TYPE,
    META_SUFFIX,
    SOURCE_REF,
    LineParser,
    ParsedLine,
)
from customlabels.formats.refs import Fetch, RefError, RefResolver
from customlabels.formats.registry import register_format
from customlabels.formats.report import ValidationReport

__all__ = [
    "CLASSIFICATION_TYPE",
    "DETECTION_TYPE",
    "check_refs",
    "dataset_to_ground_truth",
    "load_ground_truth",
    "parse_ground_truth",
    "parse_manifest_lines",
    "read_ground_truth",
    "save_ground_truth",
    "split_manifest",
]

log = logging.getLogger(__name__)

Resolve = Callable[[str], Path]
T = TypeVar("T")


def split_manifest(raw: bytes) -> list[str]:
    """A manifest's lines, without line ends. Bytes that are not UTF-8 are replaced (U+FFFD),
    so the line holding them fails on its own instead of the whole manifest."""
    return raw.decode("utf-8", errors="replace").splitlines()


def check_refs(
    lines: list[ParsedLine],
    report: ValidationReport,
    locate: Callable[[str], T],
    exists: Callable[[T], bool] | None = None,
) -> dict[int, T]:
    """Locate each line's image; lines whose ref cannot be located (or whose image does not
    exist) are reported and made invalid, with the codes ``dataset validate`` uses.

    Args:
        lines: parsed lines (see :func:`parse_manifest_lines`).
        locate: ``source-ref`` → where the image is (a local path, or a store and key); raises
            :class:`RefError` / :class:`~customlabels.errors.InvalidParameterError` (not a ref)
            or :class:`~customlabels.errors.UnsafePathError` (escapes its root), giving
            ``ERROR_INVALID_SOURCE_REF_FORMAT``, or another ``CustomLabelsError`` (cannot be
            served), giving ``ERROR_INVALID_IMAGE``.
        exists: whether a located image exists; ``None`` skips that check.

    Returns:
        ``{line number: location}`` of the lines that passed.
    """
    found: dict[int, T] = {}
    for line in lines:
        try:
            where = locate(line.ref)
        except (RefError, InvalidParameterError, UnsafePathError) as exc:
            message = exc.message if isinstance(exc, CustomLabelsError) else str(exc)
            report.line_error(line.number, "ERROR_INVALID_SOURCE_REF_FORMAT", message, SOURCE_REF)
            continue
        except StoreUnavailableError:
            raise  # an outage is not a bad line: the whole import fails, to be retried
        except CustomLabelsError as exc:  # an endpoint that cannot serve the object
            report.line_error(line.number, "ERROR_INVALID_IMAGE", exc.message, SOURCE_REF)
            continue
        if exists is not None and not exists(where):
            looked = f" (looked for {where})" if str(where) != line.ref else ""
            message = f"image {line.ref} not found{looked}"
            report.line_error(line.number, "ERROR_INVALID_IMAGE", message, SOURCE_REF)
            continue
        found[line.number] = where
    return found


def parse_manifest_lines(
    lines: Iterable[str], report: ValidationReport
) -> tuple[list[ParsedLine], list[str]]:
    """Parse every line (1-based numbers) with :class:`LineParser`; problems go to ``report``.

    Returns:
        ``(parsed, label_order)``: the lines that parsed (invalid ones are left out and
        counted in ``report``), and the label names in class-map order then first appearance.
    """
    parser = LineParser(report)
    parsed: list[ParsedLine] = []
    total = 0
    for total, text in enumerate(lines, start=1):
        line = parser.parse(total, text)
        if line is not None:
            parsed.append(line)
    report.total_lines += total
    report.refs.update(parser.refs)
    return parsed, parser.label_order


def parse_ground_truth(
    lines: Iterable[str],
    report: ValidationReport | None = None,
    resolve: Resolve | None = None,
    check_files: bool = False,
) -> Dataset:
    """Convert manifest lines to a :class:`Dataset` (pure unless ``resolve`` touches files).

    Args:
        lines: the manifest's lines, without line ends.
        report: collects every problem; a fresh one is used when omitted.
        resolve: maps a ``source-ref`` to a local path (see :class:`RefResolver`); with ``None``,
            records have no ``path``.
        check_files: skip lines whose resolved file does not exist (``ERROR_INVALID_IMAGE``).

    Returns:
        The dataset: one record per usable line (lines without annotations are kept as images
        without boxes), boxes float ``xyxy`` pixels, labels ordered by each class-map's ids then
        by first appearance, labels that label nothing left out.
    """
    report = report if report is not None else ValidationReport()
    parsed, label_order = parse_manifest_lines(lines, report)
    paths: dict[int, Path] = {}
    if resolve is not None:
        paths = check_refs(parsed, report, resolve, Path.is_file if check_files else None)
    parsed = [p for p in parsed if p.number not in report.invalid_lines and not p.unlabeled]

    by_ref: dict[str, ParsedLine] = {}
    merged: list[ParsedLine] = []
    for line in parsed:
        first = by_ref.get(line.ref)
        if first is None:
            by_ref[line.ref] = line
            merged.append(line)
            continue
        report.warning(
            line.number,
            "WARNING_DUPLICATE_SOURCE_REF",
            f"{line.ref} already appears on line {first.number}; labels merged into that line",
            SOURCE_REF,
        )
        first.boxes += line.boxes
        first.box_names += line.box_names
        first.image_names += [n for n in line.image_names if n not in first.image_names]
        first.detection_attrs += [a for a in line.detection_attrs if a not in first.detection_attrs]
        first.classification_attrs += line.classification_attrs
        first.size_wh = first.size_wh or line.size_wh
        first.merged_lines.append(line.number)

    used = {n for p in merged for n in p.box_names} | {n for p in merged for n in p.image_names}
    labels = LabelMap(n for n in label_order if n in used)
    images: list[ImageRecord] = []
    for p in merged:
        extra: dict[str, Any] = {
            "groundtruth": {
                "detection_attrs": p.detection_attrs,
                "classification_attrs": p.classification_attrs,
                "lines": [p.number, *p.merged_lines],
            }
        }
        if p.detection_attrs:
            extra["task"] = Task.OBJECT_LOCALIZATION
        images.append(
            ImageRecord(
                ref=p.ref,
                size_wh=p.size_wh,
                path=paths.get(p.number),
                boxes=np.asarray(p.boxes, dtype=np.float64).reshape(-1, 4),
                box_labels=np.asarray([labels.id_of(n) for n in p.box_names], dtype=np.int64),
                image_labels=[labels.id_of(n) for n in p.image_names],
                line=p.number,
                extra=extra,
            )
        )
    dataset = Dataset(labels=labels, images=images)
    report.use_case = dataset.task if images else report.use_case
    return dataset


def read_ground_truth(
    path: Path | str,
    bucket_map: Mapping[str, Path | str] | None = None,
    fetch: Fetch | None = None,
    *,
    report: ValidationReport | None = None,
    check_files: bool = True,
    cache_dir: Path | None = None,
) -> tuple[Dataset, ValidationReport]:
    """Load a manifest file and return the dataset with the report of what was found.

    See :func:`load_ground_truth` for the arguments.

    Raises:
        ManifestError: the file cannot be read at all.
        StoreUnavailableError: ``fetch``'s store did not answer (transient: retry the read).
    """
    path = Path(path)
    report = report if report is not None else ValidationReport(source=str(path))
    report.source = report.source or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from None
    resolver = RefResolver(
        base_dir=path.parent,
        bucket_map={k: Path(v) for k, v in (bucket_map or {}).items()},
        fetch=fetch,
        cache_dir=cache_dir,
    )
    dataset = parse_ground_truth(split_manifest(raw), report, resolver.resolve, check_files)
    return dataset, report


def load_ground_truth(
    path: Path | str,
    bucket_map: Mapping[str, Path | str] | None = None,
    fetch: Fetch | None = None,
    *,
    report: ValidationReport | None = None,
    check_files: bool = True,
    cache_dir: Path | None = None,
) -> Dataset:
    """Load a Ground Truth manifest; unusable lines are skipped and reported.

    Args:
        path: the ``.manifest`` file (JSON Lines).
        bucket_map: ``{bucket: folder}`` for ``s3://bucket/...`` refs held elsewhere on disk;
            other buckets resolve to ``key`` under the manifest's folder.
        fetch: reads the objects of unmapped buckets (e.g.
            :class:`customlabels.storage.s3.S3Fetch` for an S3-compatible endpoint), cached in
            ``cache_dir``; an object it cannot find makes its line invalid, a store that does not
            answer stops the load (see :data:`~customlabels.formats.refs.Fetch`).
        report: filled with every problem found (pass one to read it afterwards).
        check_files: skip lines whose image file is missing (a ``stat`` per image, no reading).
        cache_dir: where objects read with ``fetch`` are kept.

    Returns:
        The dataset, records' ``path`` resolved.

    Raises:
        ManifestError: the manifest itself cannot be read.
        StoreUnavailableError: ``fetch``'s store did not answer (transient: retry the load).
    """
    dataset, rep = read_ground_truth(
        path, bucket_map, fetch, report=report, check_files=check_files, cache_dir=cache_dir
    )
    if rep.errors:
        log.warning(
            "%s: %d invalid of %d lines, %d problems (%s)",
            path,
            len(rep.invalid_lines),
            rep.total_lines,
            len(rep.errors),
            ", ".join(f"{c}×{k}" for c, k in rep.codes().most_common()),
        )
    return dataset


# -- writing ------------------------------------------------------------------------------
def dataset_to_ground_truth(
    dataset: Dataset,
    detection_attr: str = "bounding-box",
    classification_attr: str = "class",
    ref_prefix: str | None = None,
    job_date: datetime | None = None,
) -> list[dict[str, Any]]:
    """Convert a dataset to manifest lines (as dicts, one per image).

    Boxes are written as integer ``ltwh`` pixels (rounded), as the service expects; every
    detection line carries the full class-map so ids stay stable across lines. Attribute names
    seen on import are reused, else ``detection_attr`` / ``classification_attr`` (``-2``, ``-3``
    ... for further image-level labels).

    Args:
        ref_prefix: when given, ``source-ref`` becomes ``ref_prefix + key`` (``key``: the ref's
            S3 key, or the ref itself when it is a relative path).
    """
    created = (job_date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    class_map = {str(i): name for i, name in enumerate(dataset.labels)}
    out: list[dict[str, Any]] = []
    for image in dataset.images:
        gt = image.extra.get("groundtruth", {})
        ref = image.ref
        if ref_prefix is not None:
            ref = ref_prefix.rstrip("/") + "/" + s3_key_of(ref)
        line: dict[str, Any] = {"source-ref": ref}
        is_detection = len(image.boxes) > 0 or image.extra.get("task") == Task.OBJECT_LOCALIZATION
        if is_detection:
            attr = (gt.get("detection_attrs") or [detection_attr])[0]
            w, h = size_of(image)
            ltwh = np.rint(xyxy_to_ltwh(np.rint(image.boxes))).astype(np.int64)
            line[attr] = {
                "image_size": [{"width": int(w), "height": int(h), "depth": 3}],
                "annotations": [
                    {
                        "class_id": int(cid),
                        "left": int(b[0]),
                        "top": int(b[1]),
                        "width": int(b[2]),
                        "height": int(b[3]),
                    }
                    for cid, b in zip(image.box_labels, ltwh, strict=True)
                ],
            }
            line[attr + META_SUFFIX] = {
                "objects": [{"confidence": 1} for _ in range(len(image.boxes))],
                "class-map": class_map,
                "type": DETECTION_TYPE,
                "human-annotated": "yes",
                "creation-date": created,
                "job-name": f"labeling-job/{attr}",
            }
        names = list(gt.get("classification_attrs") or [])
        for k, label_id in enumerate(image.image_labels):
            if k < len(names) and names[k] not in line:
                attr = names[k]
            else:
                attr = classification_attr if k == 0 else f"{classification_attr}-{k + 1}"
            line[attr] = int(label_id)
            line[attr + META_SUFFIX] = {
                "confidence": 1,
                "class-name": dataset.labels.name_of(int(label_id)),
                "type": CLASSIFICATION_TYPE,
                "human-annotated": "yes",
                "creation-date": created,
                "job-name": f"labeling-job/{attr}",
            }
        out.append(line)
    return out


def save_ground_truth(
    dataset: Dataset, path: Path | str, ref_prefix: str | None = None, **options: Any
) -> None:
    """Write ``dataset`` as a manifest at ``path`` (see :func:`dataset_to_ground_truth`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = dataset_to_ground_truth(dataset, ref_prefix=ref_prefix, **options)
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    tmp.replace(path)


register_format(
    "groundtruth",
    load=load_ground_truth,
    save=save_ground_truth,
    description="SageMaker Ground Truth manifest (JSON Lines): bounding boxes and/or image labels",
    suffixes=(".manifest", ".jsonl"),
)
