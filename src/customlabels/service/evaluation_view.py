"""A version's test-set evaluation as a person explores it: per label the stored predictions
(confidence, true or false positive) and the number of ground-truth objects, so precision,
recall and F1 can be recomputed at any threshold from the assumed one up without running the
model again; the test images with their true positives, false positives and misses; and saving
a label's threshold into the version's model card.

Read from ``model/evaluation/evaluation.manifest`` (written by ``customlabels evaluate``), which
keeps the predictions at or above each label's assumed threshold: a threshold below it cannot
be explored from stored predictions (the page says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customlabels.core.uris import parse_s3_uri
from customlabels.errors import InvalidParameterError, ResourceInUseError, ResourceNotFoundError
from customlabels.service.catalog import VersionStatus
from customlabels.service.context import Context
from customlabels.service.versions import get_version

__all__ = ["EvalImage", "LabelScores", "evaluation_image", "evaluation_view", "set_label_threshold"]

_PREDICTIONS = "customlabels-predictions"
_DETAILS = "rekognition-custom-labels-evaluation-details"
_OUTCOMES = ("tp", "fp", "miss")


@dataclass
class LabelScores:
    """What a threshold slider needs for one label.

    Attributes:
        threshold: the assumed threshold (0–1) the stored predictions start from.
        scores: ``[confidence (0–1), 1 if a true positive else 0]`` per stored prediction.
        num_gt: ground-truth objects (or images) of the label in the test set.
    """

    threshold: float
    scores: list[list[float]] = field(default_factory=list)
    num_gt: int = 0


@dataclass
class EvalImage:
    """One test image with its outcomes; boxes are ``[left, top, width, height]`` pixels."""

    index: int
    name: str
    size_wh: tuple[int, int] | None
    predictions: list[dict[str, Any]] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, list[str]] = field(default_factory=dict)


def _manifest(ctx: Context, version_arn: str) -> tuple[Path, list[str]]:
    with ctx.catalog.session() as s:
        model_dir = Path(get_version(s, version_arn).model_dir)
    path = model_dir / "evaluation" / "evaluation.manifest"
    if not path.is_file():
        return model_dir, []
    return model_dir, [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def _image(index: int, obj: dict[str, Any]) -> tuple[EvalImage, dict[str, Any]]:
    block = obj.get(_PREDICTIONS) or {}
    names = {int(k): v for k, v in (block.get("class-map") or {}).items()}
    size = (block.get("image_size") or [None])[0]
    image = EvalImage(
        index,
        str(obj.get("source-ref", "")).rsplit("/", 1)[-1],
        (int(size["width"]), int(size["height"])) if size else None,
    )
    for ann, meta in zip(block.get("annotations", []), block.get("objects", []), strict=False):
        label = names.get(int(ann["class_id"]), str(ann["class_id"]))
        tp = bool((meta.get(_DETAILS) or {}).get("is-true-positive"))
        box = [ann.get(k) for k in ("left", "top", "width", "height")]
        image.predictions.append(
            {"label": label, "confidence": float(meta.get("confidence", 0)), "tp": tp, "box": box}
        )
        image.outcomes.setdefault(label, []).append("tp" if tp else "fp")
    for ann in block.get("missed", []):
        label = names.get(int(ann["class_id"]), str(ann["class_id"]))
        box = [ann.get(k) for k in ("left", "top", "width", "height")]
        image.missed.append({"label": label, "box": box})
        image.outcomes.setdefault(label, []).append("miss")
    return image, block


def evaluation_view(
    ctx: Context, version_arn: str, label: str = "", outcome: str = ""
) -> dict[str, Any]:
    """Per-label scores for the sliders, and the test images having ``outcome`` for ``label``.

    Args:
        label: keep images with an outcome of this label ("" = any label).
        outcome: ``tp``, ``fp`` or ``miss`` ("" = any outcome).

    Returns:
        ``{"labels": {name: LabelScores}, "images": [EvalImage], "total": test images}``.
    """
    if outcome and outcome not in _OUTCOMES:
        raise InvalidParameterError(f"outcome: expected one of {_OUTCOMES}, got {outcome!r}")
    _, lines = _manifest(ctx, version_arn)
    labels: dict[str, LabelScores] = {}
    images: list[EvalImage] = []
    for i, line in enumerate(lines):
        image, block = _image(i, json.loads(line))
        for name, t in (block.get("thresholds") or {}).items():
            labels.setdefault(name, LabelScores(float(t)))
        for p in image.predictions:
            scores = labels.setdefault(p["label"], LabelScores(0.0))
            scores.scores.append([round(p["confidence"], 6), 1.0 if p["tp"] else 0.0])
            scores.num_gt += p["tp"]
        for m in image.missed:
            labels.setdefault(m["label"], LabelScores(0.0)).num_gt += 1
        kinds = (
            image.outcomes.get(label, [])
            if label
            else [k for ks in image.outcomes.values() for k in ks]
        )
        if (not outcome and (not label or kinds)) or outcome in kinds:
            images.append(image)
    return {"labels": dict(sorted(labels.items())), "images": images, "total": len(lines)}


def evaluation_image(ctx: Context, version_arn: str, index: int) -> bytes:
    """The bytes of test image ``index`` of the evaluation, read from its bucket."""
    _, lines = _manifest(ctx, version_arn)
    if not 0 <= index < len(lines):
        raise ResourceNotFoundError(f"test image {index}: the evaluation has {len(lines)}")
    bucket, key = parse_s3_uri(json.loads(lines[index]).get("source-ref", ""))
    return ctx.buckets.get(bucket, key, max_bytes=ctx.settings.s3_limits.max_bytes)


def set_label_threshold(
    ctx: Context, version_arn: str, label: str, threshold: float
) -> dict[str, Any]:
    """Save a label's assumed threshold (0–1) into the version's model card; DetectCustomLabels
    uses it (without MinConfidence) from the next start.

    Raises:
        ResourceInUseError: the version is being served (stop it first).
        InvalidParameterError: an unknown label or a threshold outside (0, 1].
    """
    from customlabels.inference.model_card import ModelCard

    with ctx.catalog.session() as s:
        row = get_version(s, version_arn)
        status, model_dir = row.status, Path(row.model_dir)
    if status in (VersionStatus.RUNNING.value, VersionStatus.STARTING.value):
        raise ResourceInUseError(f"{version_arn} is {status}: stop it to change its thresholds")
    if not 0 < threshold <= 1:
        raise InvalidParameterError(f"threshold: expected a value in (0, 1], got {threshold}")
    card = ModelCard.load(model_dir)
    if label not in card.labels:
        raise InvalidParameterError(f"label: expected one of {card.labels}, got {label!r}")
    card.thresholds[label] = float(threshold)
    card.save(model_dir)
    return {"Label": label, "Threshold": float(threshold)}
