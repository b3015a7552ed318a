"""Parsing Ground Truth manifest lines, one at a time, with the service's error codes.

:class:`LineParser` turns one JSON line into a :class:`ParsedLine` (label names, not ids yet)
and records every problem in a :class:`~customlabels.formats.report.ValidationReport`:
line-level problems skip the line, box-level problems drop the box. The public entry points are
in :mod:`customlabels.formats.groundtruth`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from customlabels.core.boxes import ltwh_to_xyxy
from customlabels.formats.checks import SERVICE_MAX_BOXES, check_boxes, check_label_name
from customlabels.formats.report import ValidationReport

__all__ = [
    "CLASSIFICATION_TYPE",
    "DETECTION_TYPE",
    "META_SUFFIX",
    "PREDICTIONS_TYPE",
    "SOURCE_REF",
    "LineParser",
    "ParsedLine",
]

DETECTION_TYPE = "groundtruth/object-detection"
CLASSIFICATION_TYPE = "groundtruth/image-classification"
# An attribute of this type holds a model's predictions (``evaluation.manifest``), not labels:
# it is read past without a problem, so such a manifest validates and imports as its ground truth.
PREDICTIONS_TYPE = "customlabels/predictions"
SOURCE_REF = "source-ref"
META_SUFFIX = "-metadata"


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass
class ParsedLine:
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
    # only a source-ref: an image waiting for its labels (a dataset entry, not a training image)
    unlabeled: bool = False


class LineParser:
    """Parses lines one by one into :class:`ParsedLine`, reporting every problem."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        self.label_order: list[str] = []  # class-map order first, then classification names
        self.refs: dict[int, str] = {}  # line number → its source-ref, valid line or not
        self._seen_labels: set[str] = set()

    def _note_label(self, name: str) -> None:
        if name not in self._seen_labels:
            self._seen_labels.add(name)
            self.label_order.append(name)

    # -- one line ------------------------------------------------------------------------
    def parse(self, number: int, text: str) -> ParsedLine | None:
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
        ref = obj.get(SOURCE_REF)
        if ref is None:
            rep.line_error(
                number, "ERROR_MISSING_SOURCE_REF", "the source-ref key is missing", SOURCE_REF
            )
            return None
        if not isinstance(ref, str) or not ref.strip():
            rep.line_error(
                number,
                "ERROR_INVALID_SOURCE_REF_FORMAT",
                f"expected s3://BUCKET/KEY, got {ref!r}",
                SOURCE_REF,
            )
            return None
        self.refs[number] = ref
        line = ParsedLine(number=number, ref=ref)
        n_issues = len(rep.issues)
        if not set(obj) - {SOURCE_REF, SOURCE_REF + META_SUFFIX}:
            rep.warning(
                number,
                "WARNING_UNLABELED_IMAGE",
                "no label attribute: an unlabelled image, not used for training until labelled",
                SOURCE_REF,
            )
            rep.ignore_line(number)
            line.unlabeled = True
            return line
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
            if key == SOURCE_REF or key.endswith(META_SUFFIX):
                if (
                    key.endswith(META_SUFFIX)
                    and key[: -len(META_SUFFIX)] not in obj
                    and key != "source-ref-metadata"
                ):
                    rep.item_error(
                        number,
                        "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
                        f"{key!r} has no label attribute {key[: -len(META_SUFFIX)]!r} beside it",
                        key,
                    )
                continue
            meta_key = key + META_SUFFIX
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

    def _attribute(self, line: ParsedLine, attr: str, value: Any, meta: Any) -> None:
        rep, n = self.report, line.number
        meta_field = attr + META_SUFFIX
        if not isinstance(meta, dict):
            rep.item_error(
                n,
                "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
                f"expected an object, got {type(meta).__name__}",
                meta_field,
            )
            return
        kind = meta.get("type")
        if kind == PREDICTIONS_TYPE:
            return
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

    def _classification(
        self, line: ParsedLine, attr: str, value: Any, meta: dict[str, Any]
    ) -> None:
        rep, n = self.report, line.number
        if not _is_int(value):
            rep.item_error(
                n,
                "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
                f"expected an integer class id, got {value!r}",
                attr,
            )
            return
        name = check_label_name(meta.get("class-name"), rep, n, f"{attr}{META_SUFFIX}.class-name")
        if name is None:
            return
        line.classification_attrs.append(attr)
        if name not in line.image_names:
            line.image_names.append(name)
        self._note_label(name)

    def _detection(self, line: ParsedLine, attr: str, value: Any, meta: dict[str, Any]) -> None:
        rep, n = self.report, line.number
        meta_field = attr + META_SUFFIX
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
