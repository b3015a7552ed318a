"""A version's test-set evaluation as a person explores it: per label the stored predictions
(confidence, true or false positive) and the number of ground-truth objects, so precision,
recall and F1 can be recomputed at any threshold from a 1 % floor up without running the
model again, and its precision–recall curve drawn; the test images with their true positives,
false positives and misses; and saving a label's threshold into the version's model card.

The scores come from ``model/evaluation/label_scores.json`` (every prediction from the floor
up); the images from ``evaluation.manifest`` (predictions at the assumed thresholds, what the
served model returns). Both are written by ``customlabels evaluate``. An evaluation written
before ``label_scores.json`` existed falls back to the manifest's predictions: its floor is
then the assumed threshold.
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
_SCORES = "label_scores.json"


@dataclass
class LabelScores:
    """What a threshold slider needs for one label.

    Attributes:
        threshold: the assumed threshold (0–1).
        scores: ``[confidence (0–1), 1 if a true positive else 0]`` per stored prediction.
        num_gt: ground-truth objects (or images) of the label in the test set.
        floor: the lowest stored confidence a threshold can go down to (0–1).
    """

    threshold: float
    scores: list[list[float]] = field(default_factory=list)
    num_gt: int = 0
    floor: float = 0.0

    def curve(self, max_points: int = 300) -> list[tuple[float, float]]:
        """The precision–recall curve over the stored scores: ``(recall, precision)`` (0–1)
        keeping predictions ``>= c`` for each distinct confidence ``c``, highest first, thinned
        to at most ``max_points`` (the last point kept). Empty without ground truth."""
        if not self.num_gt:
            return []
        ranked = sorted(self.scores, key=lambda p: -p[0])
        points: list[tuple[float, float]] = []
        tp = 0
        for i, (conf, hit) in enumerate(ranked):
            tp += int(hit)
            if i + 1 == len(ranked) or ranked[i + 1][0] != conf:
                points.append((tp / self.num_gt, tp / (i + 1)))
        step = max(1, -(-len(points) // max_points))
        return points[::step] + ([points[-1]] if points and (len(points) - 1) % step else [])

    def at(self, threshold: float) -> tuple[float, float] | None:
        """``(recall, precision)`` keeping ``confidence >= threshold``; None when nothing is
        kept or the label has no ground truth."""
        kept = [hit for conf, hit in self.scores if conf >= threshold]
        if not kept or not self.num_gt:
            return None
        return sum(kept) / self.num_gt, sum(kept) / len(kept)


@dataclass
class EvalImage:
    """One test image with its outcomes; boxes are ``[left, top, width, height]`` pixels."""

    index: int
    name: str
    size_wh: tuple[int, int] | None
    predictions: list[dict[str, Any]] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, list[str]] = field(default_factory=dict)


def _stored_scores(model_dir: Path) -> dict[str, LabelScores] | None:
    """The per-label scores of ``label_scores.json``; None when the evaluation predates it."""
    path = model_dir / "evaluation" / _SCORES
    if not path.is_file():
        return None
    stored = json.loads(path.read_text(encoding="utf-8"))
    floor = float(stored.get("floor", 0.0))
    return {
        name: LabelScores(
            float(entry["threshold"]),
            [[float(c), float(t)] for c, t in entry["scores"]],
            int(entry["num_gt"]),
            floor,
        )
        for name, entry in (stored.get("labels") or {}).items()
    }


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
        ``{"labels": {name: LabelScores}, "images": [EvalImage], "total": test images}``; the
        scores from ``label_scores.json`` when present, else from the manifest's predictions
        (floor = the assumed threshold).
    """
    if outcome and outcome not in _OUTCOMES:
        raise InvalidParameterError(f"outcome: expected one of {_OUTCOMES}, got {outcome!r}")
    model_dir, lines = _manifest(ctx, version_arn)
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
    for scores in labels.values():
        scores.floor = scores.threshold
    labels = _stored_scores(model_dir) or labels
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
    from customlabels.core.model_card import ModelCard

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
