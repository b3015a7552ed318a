"""Pascal VOC XML: one ``<annotation>`` file per image, parsed with ``defusedxml``.

``<bndbox>`` ``xmin ymin xmax ymax`` are read as ``xyxy`` pixels as written (no 1-based shift:
the BCCD XML and its Ground Truth manifest agree this way, ``left = xmin``,
``width = xmax - xmin``). Images resolve, by ``<filename>``, under ``images_dir``; by default
the first of ``../JPEGImages``, ``../images`` beside the XML folder that exists, else the XML
folder itself. Labels are ordered by first appearance (files in name order).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Task
from customlabels.errors import InvalidParameterError, ManifestError, UnsafePathError
from customlabels.formats.checks import check_boxes, check_label_name
from customlabels.formats.files import size_of, write_text_atomic
from customlabels.formats.registry import register_format
from customlabels.formats.report import ValidationReport
from customlabels.io.paths import safe_join

__all__ = ["dataset_to_voc", "load_voc", "save_voc", "voc_to_record"]


def _text(node: Any, tag: str) -> str | None:
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text is not None else None


def _number(node: Any, tag: str) -> float | None:
    value = _text(node, tag)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def voc_to_record(
    xml_text: str, labels: LabelMap, report: ValidationReport, number: int, source: str = ""
) -> ImageRecord | None:
    """Parse one VOC annotation into a record (``path`` unresolved); ``None`` if unusable.

    ``source`` (the XML file's name) prefixes the field names in reported problems.
    """
    try:
        root = SafeET.fromstring(xml_text)
    except (ET.ParseError, DefusedXmlException) as exc:
        report.line_error(number, "ERROR_INVALID_JSON_LINE", f"not valid VOC XML ({exc})")
        return None
    filename = _text(root, "filename")
    if not filename:
        report.line_error(number, "ERROR_MISSING_SOURCE_REF", "no <filename>", "filename")
        return None
    size_node = root.find("size")
    w = _number(size_node, "width") if size_node is not None else None
    h = _number(size_node, "height") if size_node is not None else None
    size = (int(w), int(h)) if w and h and w > 0 and h > 0 else None
    boxes: list[list[float]] = []
    names: list[str] = []
    fields: list[str] = []
    for k, obj in enumerate(root.findall("object")):
        fld = f"{source}:object[{k}]" if source else f"object[{k}]"
        name = check_label_name(_text(obj, "name"), report, number, f"{fld}.name")
        bnd = obj.find("bndbox")
        coords = (
            [_number(bnd, t) for t in ("xmin", "ymin", "xmax", "ymax")] if bnd is not None else []
        )
        if name is None:
            continue
        if len(coords) != 4 or any(c is None for c in coords):
            report.item_error(
                number, "ERROR_INVALID_BOUNDING_BOX", "expected <bndbox> xmin ymin xmax ymax", fld
            )
            continue
        boxes.append([float(c) for c in coords if c is not None])
        names.append(name)
        fields.append(fld)
    xyxy = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    kept, keep = check_boxes(xyxy, size, report, number, fields)
    ids = [labels.add(n) for n, k in zip(names, keep.tolist(), strict=True) if k]
    return ImageRecord(
        ref=filename,
        size_wh=size,
        boxes=kept,
        box_labels=np.asarray(ids, dtype=np.int64),
        line=number,
        extra={"task": Task.OBJECT_LOCALIZATION},
    )


def _default_images_dir(xml_dir: Path) -> Path:
    for candidate in (xml_dir.parent / "JPEGImages", xml_dir.parent / "images"):
        if candidate.is_dir():
            return candidate
    return xml_dir


def load_voc(
    path: Path | str, images_dir: Path | str | None = None, report: ValidationReport | None = None
) -> Dataset:
    """Load a folder of VOC XML files (or one file).

    Record ``line`` numbers are 1-based positions in the sorted file list; ``extra["xml"]`` is
    the file name.
    """
    path = Path(path)
    files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ManifestError(f"{path}: expected a VOC .xml file or a folder of them")
    xml_dir = files[0].parent
    root = Path(images_dir) if images_dir is not None else _default_images_dir(xml_dir)
    report = report if report is not None else ValidationReport(source=str(path))
    labels = LabelMap()
    records = []
    report.total_lines += len(files)
    for n, f in enumerate(files, start=1):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            report.line_error(n, "ERROR_INVALID_JSON_LINE", f"{f.name}: cannot read ({exc})")
            continue
        record = voc_to_record(text, labels, report, n, f.name)
        if record is None:
            continue
        try:
            record.path = safe_join(root, record.ref)
        except UnsafePathError as exc:
            report.line_error(n, "ERROR_INVALID_SOURCE_REF_FORMAT", exc.message, "filename")
            continue
        record.extra["xml"] = f.name
        records.append(record)
    report.use_case = Task.OBJECT_LOCALIZATION
    return Dataset(labels=labels, images=records)


def dataset_to_voc(dataset: Dataset) -> dict[str, str]:
    """``{xml_file_name: xml_text}``, one per image; boxes rounded to integer pixels."""
    if dataset.task != Task.OBJECT_LOCALIZATION:
        raise InvalidParameterError("VOC holds boxes; expected a detection dataset")
    out: dict[str, str] = {}
    for im in dataset.images:
        w, h = size_of(im)
        ann = ET.Element("annotation")
        ET.SubElement(ann, "filename").text = im.name
        size = ET.SubElement(ann, "size")
        for tag, value in (("width", w), ("height", h), ("depth", 3)):
            ET.SubElement(size, tag).text = str(value)
        for box, cid in zip(
            np.rint(im.boxes).astype(int).tolist(), im.box_labels.tolist(), strict=True
        ):
            obj = ET.SubElement(ann, "object")
            ET.SubElement(obj, "name").text = dataset.labels.name_of(int(cid))
            ET.SubElement(obj, "difficult").text = "0"
            bnd = ET.SubElement(obj, "bndbox")
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
                ET.SubElement(bnd, tag).text = str(value)
        ET.indent(ann)
        stem = im.name.rsplit(".", 1)[0]
        out[f"{stem}.xml"] = ET.tostring(ann, encoding="unicode") + "\n"
    return out


def save_voc(dataset: Dataset, path: Path | str) -> None:
    """Write one XML per image into the folder ``path``."""
    for name, text in dataset_to_voc(dataset).items():
        write_text_atomic(Path(path) / name, text)


register_format(
    "voc",
    load=load_voc,
    save=save_voc,
    description="Pascal VOC XML folder (one <annotation> per image, xmin/ymin/xmax/ymax pixels)",
    suffixes=(".xml",),
)
