"""``evaluation.manifest``: the test manifest with the model's predictions attached and flagged.

Each line is the original test-manifest line (all its fields kept) plus:

- on the ground-truth label attribute's ``-metadata.objects[i]`` (boxes) or on each
  image-level label's metadata: ``rekognition-custom-labels-evaluation-details`` with
  ``is-true-positive`` (found by the model) or ``is-false-negative`` (missed), as the service's
  evaluation snapshot flags them;
- ``customlabels-predictions``: the predictions kept at the assumed thresholds, as a Ground
  Truth attribute: ``image_size`` and ``annotations`` ``{class_id, left, top, width, height}``
  in integer pixels (image-level: ``{class_id, class-name}``), plus ``missed`` (the ground
  truth not found);
- ``customlabels-predictions-metadata``: ``type`` ``customlabels/predictions``, ``class-map``,
  ``objects[i]`` with the ``confidence`` (0–1) and the same evaluation details
  (``is-true-positive`` / ``is-false-positive``), ``thresholds``, ``counts``, ``model``.

The metadata's type (:data:`~customlabels.formats.gt_lines.PREDICTIONS_TYPE`) tells the Ground
Truth parser these are predictions, not labels: the file passes ``customlabels dataset
validate`` without a problem and re-importing it gives back exactly the ground truth (to fix
labels in a labelling tool, then train again), not ground truth plus predictions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from customlabels.core.boxes import ltwh_to_xyxy, xyxy_to_ltwh
from customlabels.core.dataset import ImageRecord
from customlabels.evaluation.outcomes import ImageOutcome, Kind, Outcome
from customlabels.evaluation.run import Evaluation
from customlabels.formats.gt_lines import META_SUFFIX, PREDICTIONS_TYPE, SOURCE_REF

__all__ = ["DETAILS_KEY", "PREDICTIONS_KEY", "write_evaluation_manifest"]

PREDICTIONS_KEY = "customlabels-predictions"
DETAILS_KEY = "rekognition-custom-labels-evaluation-details"


def _details(kind: Kind, present: bool) -> dict[str, Any]:
    return {
        "version": 1,
        "is-true-positive": kind == Kind.TRUE_POSITIVE,
        "is-true-negative": False,
        "is-false-positive": kind == Kind.FALSE_POSITIVE,
        "is-false-negative": kind == Kind.FALSE_NEGATIVE,
        "is-present-in-ground-truth": present,
    }


def _ltwh(box: tuple[float, float, float, float]) -> dict[str, int]:
    left, top, width, height = (round(float(v)) for v in xyxy_to_ltwh([box])[0])
    return {"left": left, "top": top, "width": width, "height": height}


def _raw_lines(manifest: Path | None) -> list[str]:
    if manifest is None or not Path(manifest).is_file():
        return []
    return Path(manifest).read_text(encoding="utf-8").splitlines()


def _flag_boxes(
    obj: dict[str, Any], rec: ImageRecord, labels: list[str], kinds: dict[int, Kind]
) -> None:
    """Flag each ground-truth annotation of ``obj`` that is one of ``rec``'s boxes."""
    used: set[int] = set()
    for attr in rec.extra.get("groundtruth", {}).get("detection_attrs", []):
        value, meta = obj.get(attr), obj.get(attr + META_SUFFIX)
        if not isinstance(value, dict) or not isinstance(meta, dict):
            continue
        class_map = meta.get("class-map", {})
        objects = meta.setdefault("objects", [])
        for j, ann in enumerate(value.get("annotations", [])):
            try:
                name = class_map[str(ann["class_id"])]
                box = ltwh_to_xyxy([[ann["left"], ann["top"], ann["width"], ann["height"]]])[0]
            except (KeyError, TypeError, ValueError):
                continue
            for k in range(len(rec.boxes)):
                if k in used or k not in kinds or labels[rec.box_labels[k]] != name:
                    continue
                if np.allclose(rec.boxes[k], box, atol=0.5):
                    used.add(k)
                    while len(objects) <= j:
                        objects.append({})
                    if isinstance(objects[j], dict):
                        objects[j][DETAILS_KEY] = _details(kinds[k], True)
                    break


def _flag_image_labels(
    obj: dict[str, Any], rec: ImageRecord, labels: list[str], found: set[int]
) -> None:
    for attr in rec.extra.get("groundtruth", {}).get("classification_attrs", []):
        meta = obj.get(attr + META_SUFFIX)
        if isinstance(meta, dict) and meta.get("class-name") in labels:
            c = labels.index(meta["class-name"])
            kind = Kind.TRUE_POSITIVE if c in found else Kind.FALSE_NEGATIVE
            meta[DETAILS_KEY] = _details(kind, True)


def _line(ev: Evaluation, rec: ImageRecord, out: ImageOutcome, raw: list[str]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if rec.line is not None and 0 < rec.line <= len(raw):
        try:
            obj = json.loads(raw[rec.line - 1])
        except json.JSONDecodeError:
            obj = {}
    if not isinstance(obj, dict) or obj.get(SOURCE_REF) != rec.ref:
        obj = {SOURCE_REF: rec.ref}
    preds = [o for o in out.items if o.kind != Kind.FALSE_NEGATIVE]
    misses = [o for o in out.items if o.kind == Kind.FALSE_NEGATIVE]
    labels = ev.labels
    block: dict[str, Any] = {}
    meta: dict[str, Any] = {
        "type": PREDICTIONS_TYPE,
        "version": 1,
        "model": ev.card.version_name,
        "thresholds": {name: round(ev.thresholds[name], 6) for name in labels},
        "class-map": {str(i): name for i, name in enumerate(labels)},
        "counts": {
            "true-positives": out.count(Kind.TRUE_POSITIVE),
            "false-positives": out.count(Kind.FALSE_POSITIVE),
            "false-negatives": out.count(Kind.FALSE_NEGATIVE),
        },
        "creation-date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if ev.detection:
        if rec.size_wh is not None:
            block["image_size"] = [{"width": rec.size_wh[0], "height": rec.size_wh[1], "depth": 3}]
        block["annotations"] = [{"class_id": o.label, **_ltwh(_box(o))} for o in preds]
        block["missed"] = [{"class_id": o.label, **_ltwh(_box(o))} for o in misses]
        kinds = {o.gt_index: o.kind for o in out.items if o.gt_index >= 0}
        _flag_boxes(obj, rec, labels, kinds)
    else:
        block["annotations"] = [{"class_id": o.label, "class-name": labels[o.label]} for o in preds]
        block["missed"] = [{"class_id": o.label, "class-name": labels[o.label]} for o in misses]
        found = {o.label for o in preds if o.kind == Kind.TRUE_POSITIVE}
        _flag_image_labels(obj, rec, labels, found)
    meta["objects"] = [
        {
            "confidence": round(o.score or 0.0, 6),
            DETAILS_KEY: _details(o.kind, o.kind == Kind.TRUE_POSITIVE),
        }
        for o in preds
    ]
    obj[PREDICTIONS_KEY] = block
    obj[PREDICTIONS_KEY + META_SUFFIX] = meta
    return obj


def _box(o: Outcome) -> tuple[float, float, float, float]:
    return o.box if o.box is not None else (0.0, 0.0, 0.0, 0.0)


def write_evaluation_manifest(
    ev: Evaluation, path: Path, outcomes: list[ImageOutcome] | None = None
) -> Path:
    """Write ``evaluation.manifest`` (JSON Lines, one test image a line, test order)."""
    outcomes = outcomes if outcomes is not None else ev.outcomes()
    raw = _raw_lines(ev.test_manifest)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for rec, out in zip(ev.records, outcomes, strict=True):
            fh.write(json.dumps(_line(ev, rec, out, raw), separators=(",", ":")) + "\n")
    tmp.replace(path)
    return path
