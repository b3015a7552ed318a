"""YOLO detection datasets: ``data.yaml`` plus one label ``.txt`` per image.

Layout (Ultralytics): ``data.yaml`` names the splits' image folders (``train: images/train``,
``val: ...``, ``test: ...``, each a folder, a ``.txt`` list of image paths, or a list of those)
and the labels (``names``: list or ``{id: name}``). The labels of ``images/<split>/x.jpg`` are in
``labels/<split>/x.txt``, one ``class x_center y_center width height`` line per box, normalized
to 0–1 (``xywh_norm``); a line with more values is a polygon, boxed by its extent. An image
without a label file has no boxes.

Every path stays under the ``data.yaml`` folder (``safe_join``): a ``path:`` key that leaves it
is ignored with a warning. Image sizes come from the file headers (needed to denormalize).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from customlabels.core.boxes import xywh_norm_to_xyxy, xyxy_to_xywh_norm
from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Split, Task
from customlabels.errors import (
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    ManifestError,
    UnsafePathError,
)
from customlabels.formats.checks import check_boxes
from customlabels.formats.files import IMAGE_SUFFIXES, place_image, size_of, write_text_atomic
from customlabels.formats.registry import register_format
from customlabels.formats.report import ValidationReport
from customlabels.io.images import read_image_bytes, read_size_wh
from customlabels.io.paths import safe_join

__all__ = ["dataset_to_yolo_labels", "load_yolo", "parse_yolo_labels", "save_yolo"]

_SPLITS = {"train": Split.TRAIN, "val": Split.VALIDATION, "test": Split.TEST}


def parse_yolo_labels(
    text: str,
    size_wh: tuple[int, int],
    n_labels: int,
    report: ValidationReport,
    number: int,
    source: str,
) -> tuple[np.ndarray, np.ndarray]:
    """One label file's text → ``(xyxy pixel boxes (N, 4), class ids (N,))``; bad rows reported."""
    boxes: list[list[float]] = []
    ids: list[int] = []
    fields: list[str] = []
    for row, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        fld = f"{source}:{row}"
        try:
            cid = int(parts[0])
            values = [float(v) for v in parts[1:]]
        except ValueError:
            report.item_error(
                number, "ERROR_INVALID_BOUNDING_BOX", f"expected numbers, got {raw!r}", fld
            )
            continue
        if not 0 <= cid < n_labels:
            report.item_error(
                number,
                "ERROR_MISSING_CLASS_MAP_ID",
                f"class {cid} is not in names (0..{n_labels - 1}); box dropped",
                fld,
            )
            continue
        if len(values) == 4:
            xyxy = xywh_norm_to_xyxy([values], size_wh)[0]
        elif len(values) >= 6 and len(values) % 2 == 0:  # polygon: box its extent
            pts = np.asarray(values).reshape(-1, 2) * np.asarray(size_wh, dtype=np.float64)
            xyxy = np.concatenate([pts.min(0), pts.max(0)])
        else:
            report.item_error(
                number,
                "ERROR_INVALID_BOUNDING_BOX",
                f"expected 'class xc yc w h', got {raw!r}",
                fld,
            )
            continue
        boxes.append([float(v) for v in xyxy])
        ids.append(cid)
        fields.append(fld)
    xyxy_all = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    kept, keep = check_boxes(xyxy_all, size_wh, report, number, fields)
    return kept, np.asarray(ids, dtype=np.int64)[keep]


def _names(spec: Any, source: Path) -> list[str]:
    if isinstance(spec, list) and all(isinstance(n, str) for n in spec):
        return list(spec)
    if isinstance(spec, dict) and all(isinstance(k, int) for k in spec):
        if sorted(spec) != list(range(len(spec))):
            raise ManifestError(
                f"{source}: names ids must be 0..{len(spec) - 1}, got {sorted(spec)}"
            )
        return [str(spec[k]) for k in range(len(spec))]
    raise ManifestError(f"{source}: expected 'names' as a list or {{id: name}}, got {spec!r}")


def _label_path(image_key: str) -> str:
    parts = image_key.split("/")
    idx = max((i for i, p in enumerate(parts[:-1]) if p == "images"), default=None)
    if idx is not None:
        parts[idx] = "labels"
    parts[-1] = parts[-1].rsplit(".", 1)[0] + ".txt"
    return "/".join(parts)


def _image_keys(root: Path, entry: str, report: ValidationReport) -> list[str]:
    target = safe_join(root, entry)
    if target.is_dir():
        return sorted(
            p.relative_to(root).as_posix()
            for p in target.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
    if target.suffix == ".txt" and target.is_file():
        keys = []
        for line in target.read_text(encoding="utf-8").splitlines():
            key = line.strip().removeprefix("./")
            if key:
                keys.append(key)
        return keys
    report.warning(None, "WARNING_MISSING_SPLIT", f"{entry!r} is neither a folder nor a .txt list")
    return []


def load_yolo(path: Path | str, report: ValidationReport | None = None) -> Dataset:
    """Load a YOLO dataset from its ``data.yaml`` (or the folder holding it)."""
    path = Path(path)
    yaml_path = path / "data.yaml" if path.is_dir() else path
    try:
        spec = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ManifestError(f"{yaml_path}: cannot read data.yaml ({exc})") from None
    if not isinstance(spec, dict):
        raise ManifestError(f"{yaml_path}: expected a mapping, got {type(spec).__name__}")
    report = report if report is not None else ValidationReport(source=str(yaml_path))
    names = _names(spec.get("names"), yaml_path)
    root = yaml_path.parent
    if spec.get("path") not in (None, "", "."):
        try:
            root = safe_join(yaml_path.parent, str(spec["path"]))
        except UnsafePathError:
            report.warning(
                None,
                "WARNING_PATH_IGNORED",
                f"path {spec['path']!r} leaves {yaml_path.parent}; using that folder instead",
            )
    labels = LabelMap(names)
    records: list[ImageRecord] = []
    number = 0
    for split_key, split in _SPLITS.items():
        entries = spec.get(split_key)
        if entries is None:
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            try:
                keys = _image_keys(root, str(entry), report)
            except UnsafePathError as exc:
                report.warning(None, "WARNING_PATH_IGNORED", exc.message)
                continue
            for key in keys:
                number += 1
                record = _record(root, key, split, labels, report, number)
                if record is not None:
                    records.append(record)
    report.total_lines += number
    report.use_case = Task.OBJECT_LOCALIZATION
    return Dataset(labels=labels, images=records)


def _record(
    root: Path, key: str, split: Split, labels: LabelMap, report: ValidationReport, number: int
) -> ImageRecord | None:
    try:
        image_path = safe_join(root, key)
        label_path = safe_join(root, _label_path(key))
    except UnsafePathError as exc:
        report.line_error(number, "ERROR_INVALID_SOURCE_REF_FORMAT", exc.message, key)
        return None
    try:  # the size is needed to denormalize; only the header is read
        size = read_size_wh(read_image_bytes(image_path), key)
    except ImageTooLargeError as exc:
        report.line_error(number, "ERROR_INVALID_IMAGE_DIMENSION", exc.message, key)
        return None
    except InvalidImageError as exc:
        report.line_error(number, "ERROR_INVALID_IMAGE", exc.message, key)
        return None
    text = label_path.read_text(encoding="utf-8") if label_path.is_file() else ""
    boxes, ids = parse_yolo_labels(text, size, len(labels), report, number, _label_path(key))
    return ImageRecord(
        ref=key,
        size_wh=size,
        path=image_path,
        split=split,
        boxes=boxes,
        box_labels=ids,
        line=number,
        extra={"task": Task.OBJECT_LOCALIZATION},
    )


def dataset_to_yolo_labels(boxes: np.ndarray, ids: np.ndarray, size_wh: tuple[int, int]) -> str:
    """Boxes (``xyxy`` pixels) → label-file text (``class xc yc w h``, 10 significant digits)."""
    rows = xyxy_to_xywh_norm(boxes, size_wh)
    return "".join(
        f"{int(c)} " + " ".join(f"{v:.10g}" for v in row) + "\n"
        for c, row in zip(ids.tolist(), rows.tolist(), strict=True)
    )


def save_yolo(dataset: Dataset, path: Path | str, copy_images: bool = True) -> None:
    """Write ``data.yaml``, ``images/<split>/`` (hard links or copies) and ``labels/<split>/``.

    Images without a split go to ``train``; a ``validation`` split is written as ``val``.
    """
    if dataset.task != Task.OBJECT_LOCALIZATION:
        raise InvalidParameterError("YOLO detection holds boxes; write image labels as folders")
    out = Path(path)
    folder = {Split.TRAIN: "train", Split.VALIDATION: "val", Split.TEST: "test"}
    used: dict[str, set[str]] = {}
    for i, im in enumerate(dataset.images):
        split = folder[im.split or Split.TRAIN]
        names = used.setdefault(split, set())
        name = im.name if im.name not in names else f"{i:06d}_{im.name}"
        names.add(name)
        stem = name.rsplit(".", 1)[0]
        write_text_atomic(
            out / "labels" / split / f"{stem}.txt",
            dataset_to_yolo_labels(im.boxes, im.box_labels, size_of(im)),
        )
        if copy_images and im.path is not None:
            place_image(im.path, out / "images" / split / name)
    spec: dict[str, Any] = {"path": "."}
    for split in ("train", "val", "test"):
        if split in used:
            spec[split] = f"images/{split}"
    spec["names"] = dict(enumerate(dataset.labels.names))
    write_text_atomic(out / "data.yaml", yaml.safe_dump(spec, sort_keys=False))


register_format(
    "yolo",
    load=load_yolo,
    save=save_yolo,
    description="YOLO data.yaml + labels/*.txt (class x_center y_center width height, 0–1)",
    suffixes=(".yaml", ".yml"),
)
