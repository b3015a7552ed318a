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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from customlabels.core.boxes import ltwh_to_xyxy, xyxy_to_ltwh
from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Task
from customlabels.errors import CustomLabelsError, ManifestError, UnsafePathError
from customlabels.formats.checks import SERVICE_MAX_BOXES, check_boxes, check_label_name
from customlabels.formats.files import size_of
from customlabels.formats.refs import RefError, RefResolver
from customlabels.formats.registry import register_format
from customlabels.formats.report import ValidationReport

__all__ = [
    "CLASSIFICATION_TYPE",
    "DETECTION_TYPE",
    "dataset_to_ground_truth",
    "load_ground_truth",
    "parse_ground_truth",
    "read_ground_truth",
    "save_ground_truth",
]

log = logging.getLogger(__name__)

DETECTION_TYPE = "groundtruth/object-detection"
CLASSIFICATION_TYPE = "groundtruth/image-classification"
_SOURCE_REF = "source-ref"
_META = "-metadata"

Resolve = Callable[[str], Path]


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass
class _Line:
    """What one line contributed, before label ids are assigned."""

    number: int
    ref: str
    size_wh: tuple[int, int] | None = None
    boxes: list[list[float]] = field(default_factory=list)
    box_names: list[str] = field(default_factory=list)
    image_names: list[str] = field(default_factory=list)
    detection_attrs: list[str] = field(default_factory=list)
    classification_attrs: list[str] = field(default_factory=list)
    raw_annotations: int = 0
    merged_lines: list[int] = field(default_factory=list)


class _Parser:
    """Parses lines one by one into :class:`_Line`, reporting every problem."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        self.label_order: list[str] = []  # class-map order first, then classification names
        self._seen_labels: set[str] = set()

    def _note_label(self, name: str) -> None:
        if name not in self._seen_labels:
            self._seen_labels.add(name)
            self.label_order.append(name)

    # -- one line ------------------------------------------------------------------------
    def parse(self, number: int, text: str) -> _Line | None:
        rep = self.report
        if not text.strip():
            rep.line_error(number, "ERROR_INVALID_JSON_LINE", "blank line; expected a JSON object")
            return None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            rep.line_error(
                number,
                "ERROR_INVALID_JSON_LINE",
                f"not valid JSON ({exc.msg} at column {exc.colno})",
            )
            return None
        if not isinstance(obj, dict):
            rep.line_error(
                number,
                "ERROR_INVALID_JSON_LINE",
                f"expected a JSON object, got {type(obj).__name__}",
            )
            return None
        ref = obj.get(_SOURCE_REF)
        if ref is None:
            rep.line_error(
                number, "ERROR_MISSING_SOURCE_REF", "the source-ref key is missing", _SOURCE_REF
            )
            return None
        if not isinstance(ref, str) or not ref.strip():
            rep.line_error(
                number,
                "ERROR_INVALID_SOURCE_REF_FORMAT",
                f"expected s3://BUCKET/KEY, got {ref!r}",
                _SOURCE_REF,
            )
            return None
        line = _Line(number=number, ref=ref)
        n_issues = len(rep.issues)
        attrs = self._label_attributes(obj, number, n_issues)
        if attrs is None:
            return None
        for attr, value, meta in attrs:
            self._attribute(line, attr, value, meta)
        has_labels = bool(line.boxes or line.image_names)
        if has_labels:
            return line
        if line.detection_attrs and line.raw_annotations == 0:
            # the service ignores such lines; we keep them as negative images (docs/datasets.md)
            rep.warning(
                number,
                "WARNING_NO_ANNOTATIONS",
                "no annotations: kept as an image without objects (the service ignores it)",
                f"{line.detection_attrs[0]}.annotations",
            )
            rep.ignore_line(number)
            return line
        if line.raw_annotations:
            rep.line_error(
                number,
                "ERROR_NO_VALID_ANNOTATIONS",
                f"none of the {line.raw_annotations} annotations is valid; line skipped",
            )
        elif len(rep.issues) == n_issues:
            rep.line_error(number, "ERROR_NO_LABEL_ATTRIBUTES", "no usable label attribute")
        rep.mark_invalid(number)
        return None

    def _label_attributes(
        self, obj: dict[str, Any], number: int, n_issues: int
    ) -> list[tuple[str, Any, Any]] | None:
        rep = self.report
        out: list[tuple[str, Any, Any]] = []
        for key, value in obj.items():
            if key == _SOURCE_REF or key.endswith(_META):
                if (
                    key.endswith(_META)
                    and key[: -len(_META)] not in obj
                    and key != "source-ref-metadata"
                ):
                    rep.item_error(
                        number,
                        "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
                        f"{key!r} has no label attribute {key[: -len(_META)]!r} beside it",
                        key,
                    )
                continue
            meta_key = key + _META
            if meta_key in obj:
                out.append((key, value, obj[meta_key]))
            elif (isinstance(value, dict) and "annotations" in value) or _is_int(value):
                rep.item_error(
                    number,
                    "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
                    f"label attribute {key!r} has no {meta_key!r}",
                    meta_key,
                )
            # any other key is a user field: kept out of the labels, not an error
        if not out:
            if len(rep.issues) == n_issues:
                rep.line_error(
                    number,
                    "ERROR_NO_LABEL_ATTRIBUTES",
                    "no label attribute; expected <attr> with <attr>-metadata",
                )
            else:
                rep.mark_invalid(number)
            return None
        return out

    def _attribute(self, line: _Line, attr: str, value: Any, meta: Any) -> None:
        rep, n = self.report, line.number
        meta_field = attr + _META
        if not isinstance(meta, dict):
            rep.item_error(
                n,
                "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
                f"expected an object, got {type(meta).__name__}",
                meta_field,
            )
            return
        kind = meta.get("type")
        if kind == DETECTION_TYPE:
            self._detection(line, attr, value, meta)
        elif kind == CLASSIFICATION_TYPE:
            self._classification(line, attr, value, meta)
        elif kind is None:
            rep.item_error(
                n,
                "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
                f"missing 'type'; expected {DETECTION_TYPE!r} or {CLASSIFICATION_TYPE!r}",
                f"{meta_field}.type",
            )
        else:
            rep.item_error(
                n,
                "ERROR_UNSUPPORTED_USE_CASE_TYPE",
                f"type {kind!r} is not supported; expected {DETECTION_TYPE!r} or "
                f"{CLASSIFICATION_TYPE!r}",
                f"{meta_field}.type",
            )

    def _classification(self, line: _Line, attr: str, value: Any, meta: dict[str, Any]) -> None:
        rep, n = self.report, line.number
        if not _is_int(value):
            rep.item_error(
                n,
                "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
                f"expected an integer class id, got {value!r}",
                attr,
            )
            return
        name = check_label_name(meta.get("class-name"), rep, n, f"{attr}{_META}.class-name")
        if name is None:
            return
        line.classification_attrs.append(attr)
        if name not in line.image_names:
            line.image_names.append(name)
        self._note_label(name)

    def _detection(self, line: _Line, attr: str, value: Any, meta: dict[str, Any]) -> None:
        rep, n = self.report, line.number
        meta_field = attr + _META
        size = self._image_size(value, attr, n)
        annotations = value.get("annotations") if isinstance(value, dict) else None
        if size is None:
            return
        if not isinstance(annotations, list):
            rep.item_error(
                n,
                "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
                f"expected 'annotations' to be a list, got {type(annotations).__name__}",
                f"{attr}.annotations",
            )
            return
        class_map = meta.get("class-map")
        if not isinstance(class_map, dict):
            rep.item_error(
                n,
                "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
                f"expected 'class-map' to be an object, got {type(class_map).__name__}",
                f"{meta_field}.class-map",
            )
            return
        names: dict[str, str | None] = {}
        for cid in sorted(
            class_map, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k)
        ):
            name = check_label_name(class_map[cid], rep, n, f"{meta_field}.class-map.{cid}")
            names[cid] = name
        if line.size_wh is not None and line.size_wh != size:
            rep.warning(
                n,
                "WARNING_IMAGE_SIZE_MISMATCH",
                f"image_size {size[0]}×{size[1]} differs from {line.size_wh[0]}×{line.size_wh[1]} "
                "given by another attribute",
                f"{attr}.image_size",
            )
        line.size_wh = line.size_wh or size
        line.detection_attrs.append(attr)
        line.raw_annotations += len(annotations)
        objects = meta.get("objects")
        if (
            not isinstance(objects, list)
            or len(objects) != len(annotations)
            or not all(isinstance(o, dict) and _is_number(o.get("confidence")) for o in objects)
        ):
            rep.warning(
                n,
                "ERROR_MISSING_BOUNDING_BOX_CONFIDENCE",
                f"expected 'objects' with one {{confidence}} per annotation ({len(annotations)}); "
                "unused, so the boxes are kept",
                f"{meta_field}.objects",
            )
        if len(annotations) > SERVICE_MAX_BOXES:
            rep.warning(
                n,
                "ERROR_TOO_MANY_BOUNDING_BOXES",
                f"{len(annotations)} boxes; the service allows {SERVICE_MAX_BOXES}, all are kept",
                f"{attr}.annotations",
            )
        boxes: list[list[float]] = []
        box_names: list[str] = []
        fields: list[str] = []
        for i, ann in enumerate(annotations):
            fld = f"{attr}.annotations[{i}]"
            box = self._box(ann, n, fld)
            if box is None:
                continue
            cid, ltwh = box
            if cid not in names:
                rep.item_error(
                    n,
                    "ERROR_MISSING_CLASS_MAP_ID",
                    f"class_id {cid} is not in the class-map (ids {sorted(class_map)}); "
                    "box dropped",
                    f"{fld}.class_id",
                )
                continue
            name = names[cid]
            if name is None:
                continue  # its class-map entry was reported already
            boxes.append(ltwh)
            box_names.append(name)
            fields.append(fld)
        if boxes:
            kept, keep = check_boxes(ltwh_to_xyxy(boxes), size, rep, n, fields)
            line.boxes += kept.tolist()
            line.box_names += [box_names[k] for k in np.flatnonzero(keep).tolist()]
        for name in names.values():
            if name is not None:
                self._note_label(name)

    def _image_size(self, value: Any, attr: str, n: int) -> tuple[int, int] | None:
        size = value.get("image_size") if isinstance(value, dict) else None
        first = size[0] if isinstance(size, list) and len(size) >= 1 else None
        if (
            isinstance(first, dict)
            and _is_int(first.get("width"))
            and _is_int(first.get("height"))
            and first["width"] > 0
            and first["height"] > 0
        ):
            return (int(first["width"]), int(first["height"]))
        self.report.item_error(
            n,
            "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
            f"expected image_size [{{width, height, depth}}] with positive integers, got {size!r}",
            f"{attr}.image_size",
        )
        return None

    def _box(self, ann: Any, n: int, fld: str) -> tuple[str, list[float]] | None:
        keys = ("left", "top", "width", "height")
        if not isinstance(ann, dict):
            self.report.item_error(
                n,
                "ERROR_INVALID_BOUNDING_BOX",
                f"expected an object, got {ann!r}; box dropped",
                fld,
            )
            return None
        cid = ann.get("class_id")
        if not _is_int(cid) and not (isinstance(cid, str) and cid.isdigit()):
            self.report.item_error(
                n,
                "ERROR_MISSING_CLASS_MAP_ID",
                f"expected an integer class_id, got {cid!r}; box dropped",
                f"{fld}.class_id",
            )
            return None
        bad = [k for k in keys if not _is_number(ann.get(k))]
        if bad:
            self.report.item_error(
                n,
                "ERROR_INVALID_BOUNDING_BOX",
                f"expected numbers for {', '.join(bad)}, got "
                f"{', '.join(repr(ann.get(k)) for k in bad)}; box dropped",
                f"{fld}.{bad[0]}",
            )
            return None
        return str(cid), [float(ann[k]) for k in keys]


def _resolve_and_check(
    lines: list[_Line], report: ValidationReport, resolve: Resolve | None, check_files: bool
) -> dict[int, Path]:
    paths: dict[int, Path] = {}
    if resolve is None:
        return paths
    for line in lines:
        try:
            path = resolve(line.ref)
        except (RefError, UnsafePathError) as exc:
            report.line_error(line.number, "ERROR_INVALID_SOURCE_REF_FORMAT", f"{exc}", _SOURCE_REF)
            continue
        except CustomLabelsError as exc:  # an endpoint that cannot serve the object
            report.line_error(line.number, "ERROR_INVALID_IMAGE", exc.message, _SOURCE_REF)
            continue
        if check_files and not path.is_file():
            report.line_error(
                line.number,
                "ERROR_INVALID_IMAGE",
                f"image {line.ref} not found (looked for {path})",
                _SOURCE_REF,
            )
            continue
        paths[line.number] = path
    return paths


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
    parser = _Parser(report)
    parsed: list[_Line] = []
    total = 0
    for total, text in enumerate(lines, start=1):
        line = parser.parse(total, text)
        if line is not None:
            parsed.append(line)
    report.total_lines += total
    paths = _resolve_and_check(parsed, report, resolve, check_files)
    parsed = [p for p in parsed if p.number not in report.invalid_lines]

    by_ref: dict[str, _Line] = {}
    merged: list[_Line] = []
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
            _SOURCE_REF,
        )
        first.boxes += line.boxes
        first.box_names += line.box_names
        first.image_names += [n for n in line.image_names if n not in first.image_names]
        first.detection_attrs += [a for a in line.detection_attrs if a not in first.detection_attrs]
        first.classification_attrs += line.classification_attrs
        first.size_wh = first.size_wh or line.size_wh
        first.merged_lines.append(line.number)

    used = {n for p in merged for n in p.box_names} | {n for p in merged for n in p.image_names}
    labels = LabelMap(n for n in parser.label_order if n in used)
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
    s3_endpoint_url: str | None = None,
    *,
    report: ValidationReport | None = None,
    check_files: bool = True,
    cache_dir: Path | None = None,
    s3_options: dict[str, Any] | None = None,
) -> tuple[Dataset, ValidationReport]:
    """Load a manifest file and return the dataset with the report of what was found.

    See :func:`load_ground_truth` for the arguments.

    Raises:
        ManifestError: the file cannot be read at all.
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
        s3_endpoint_url=s3_endpoint_url,
        cache_dir=cache_dir,
        s3_options=dict(s3_options or {}),
    )
    text = raw.decode("utf-8", errors="replace")
    dataset = parse_ground_truth(text.splitlines(), report, resolver.resolve, check_files)
    return dataset, report


def load_ground_truth(
    path: Path | str,
    bucket_map: Mapping[str, Path | str] | None = None,
    s3_endpoint_url: str | None = None,
    *,
    report: ValidationReport | None = None,
    check_files: bool = True,
    cache_dir: Path | None = None,
    s3_options: dict[str, Any] | None = None,
) -> Dataset:
    """Load a Ground Truth manifest; unusable lines are skipped and reported.

    Args:
        path: the ``.manifest`` file (JSON Lines).
        bucket_map: ``{bucket: folder}`` for ``s3://bucket/...`` refs held elsewhere on disk;
            other buckets resolve to ``key`` under the manifest's folder.
        s3_endpoint_url: an S3-compatible endpoint to download unmapped buckets from (cached in
            ``cache_dir``).
        report: filled with every problem found (pass one to read it afterwards).
        check_files: skip lines whose image file is missing (a ``stat`` per image, no reading).
        cache_dir: where objects fetched from ``s3_endpoint_url`` are kept.
        s3_options: extra arguments for the S3 store (e.g. ``client``).

    Returns:
        The dataset, records' ``path`` resolved.

    Raises:
        ManifestError: the manifest itself cannot be read.
    """
    dataset, rep = read_ground_truth(
        path,
        bucket_map,
        s3_endpoint_url,
        report=report,
        check_files=check_files,
        cache_dir=cache_dir,
        s3_options=s3_options,
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
            key = ref[5:].partition("/")[2] if ref.startswith("s3://") else ref
            ref = ref_prefix.rstrip("/") + "/" + key
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
            line[attr + _META] = {
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
            line[attr + _META] = {
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
