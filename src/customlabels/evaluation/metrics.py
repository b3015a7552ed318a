"""Detection and classification metrics: one implementation for training and evaluation.

Pure numpy. Confidences and thresholds are 0–1. Detection counts boxes: a prediction is a true
positive when the greedy, confidence-ordered matching of :mod:`.matching` pairs it with a
ground-truth box of its label at IoU ≥ 0.5. Classification counts images.

Thresholds: P/R/F1 "at threshold" use the given per-label thresholds (e.g. the model card's);
a label missing from ``thresholds`` (or ``thresholds=None``) uses its best-F1 threshold on the
data being evaluated — what training does on the validation split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.errors import InvalidParameterError
from customlabels.evaluation.curves import (
    PRCurve,
    ThresholdScores,
    average_precision,
    best_f1_threshold,
    pr_curve,
    ratios,
    scores_at_threshold,
)
from customlabels.evaluation.matching import IOU_THRESHOLDS, match_boxes

__all__ = [
    "ClassificationMetrics",
    "DetectionMetrics",
    "LabelMatches",
    "LabelMetrics",
    "best_f1_threshold",
    "classification_metrics",
    "detection_metrics",
    "kept_labels",
    "score_matrix",
]

IntArray = npt.NDArray[np.int64]


@dataclass
class LabelMatches:
    """Every prediction of one label over the evaluated images, for curves and bootstraps.

    Attributes:
        scores: float ``(n,)`` confidences, in image order then highest first in each image.
        image_index: int ``(n,)`` index of each prediction's image.
        is_tp: bool ``(T, n)`` true positive at each IoU threshold (``T = 1`` for classifiers).
        gt_per_image: int ``(N,)`` ground-truth instances of the label in each image.
    """

    scores: npt.NDArray[np.float64]
    image_index: IntArray
    is_tp: npt.NDArray[np.bool_]
    gt_per_image: IntArray

    @property
    def num_gt(self) -> int:
        return int(self.gt_per_image.sum())

    def per_image_counts(self, threshold: float) -> tuple[IntArray, IntArray, IntArray]:
        """``(tp, fp, gt)`` per image, each int ``(N,)``, keeping ``score >= threshold``."""
        n = len(self.gt_per_image)
        kept = self.scores >= threshold
        tp_flags = kept & self.is_tp[0]
        tp = np.bincount(self.image_index[tp_flags], minlength=n).astype(np.int64)
        fp = np.bincount(self.image_index[kept & ~tp_flags], minlength=n).astype(np.int64)
        return tp, fp, self.gt_per_image


@dataclass
class LabelMetrics:
    """Metrics of one label.

    Attributes:
        num_gt: ground-truth boxes (detection) or positive images (classification).
        num_images: images with at least one ground-truth instance of the label.
        num_predictions: predictions of the label (any confidence).
        ap50: AP at IoU 0.5, COCO 101-point (classification: the same over images); ``nan``
            without ground truth.
        ap50_95: AP averaged over IoU 0.50:0.05:0.95 (classification: equal to ``ap50``).
        ar: recall with every prediction kept, averaged over the same IoU thresholds.
        curve: the PR curve at IoU 0.5.
        best: best-F1 threshold and its scores (optimistic when computed on a test set).
        at_threshold: scores at the given threshold (``best`` when none was given).
        matches: the raw matches (for bootstraps and the evaluation manifest).
    """

    label: str
    num_gt: int
    num_images: int
    num_predictions: int
    ap50: float
    ap50_95: float
    ar: float
    curve: PRCurve
    best: ThresholdScores
    at_threshold: ThresholdScores
    matches: LabelMatches = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (no curves; undefined values are ``None``)."""
        return _json_safe(
            {
                "num_gt": self.num_gt,
                "num_images": self.num_images,
                "num_predictions": self.num_predictions,
                "ap50": self.ap50,
                "ap50_95": self.ap50_95,
                "ar": self.ar,
                "threshold": self.at_threshold.threshold,
                "precision": self.at_threshold.precision,
                "recall": self.at_threshold.recall,
                "f1": self.at_threshold.f1,
                "best_f1_threshold": self.best.threshold,
                "best_precision": self.best.precision,
                "best_recall": self.best.recall,
                "best_f1": self.best.f1,
            }
        )


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """Floats rounded to 6 digits, ``nan`` → ``None`` (so ``json.dumps`` writes valid JSON)."""
    return {
        k: (None if math.isnan(v) else round(v, 6)) if isinstance(v, float) else v
        for k, v in d.items()
    }


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


@dataclass
class _Aggregate:
    labels: list[str]
    per_label: dict[str, LabelMetrics]
    num_images: int

    @property
    def thresholds(self) -> dict[str, float]:
        """The threshold used for each label (0–1)."""
        return {k: m.at_threshold.threshold for k, m in self.per_label.items()}

    @property
    def best_thresholds(self) -> dict[str, float]:
        """Each label's best-F1 threshold on the evaluated data (0–1)."""
        return {k: m.best.threshold for k, m in self.per_label.items()}

    def _micro(self) -> tuple[float, float, float]:
        tp = sum(m.at_threshold.tp for m in self.per_label.values())
        fp = sum(m.at_threshold.fp for m in self.per_label.values())
        gt = sum(m.num_gt for m in self.per_label.values())
        return ratios(tp, fp, gt)

    @property
    def precision(self) -> float:
        """Micro precision over all labels at their thresholds."""
        return self._micro()[0]

    @property
    def recall(self) -> float:
        return self._micro()[1]

    @property
    def f1(self) -> float:
        return self._micro()[2]

    def _means(self) -> dict[str, float]:
        has_gt = [m for m in self.per_label.values() if m.num_gt > 0]
        return {
            "map50": _nanmean([m.ap50 for m in has_gt]),
            "map50_95": _nanmean([m.ap50_95 for m in has_gt]),
            "mar": _nanmean([m.ar for m in has_gt]),
        }

    def to_dict(self) -> dict[str, Any]:
        head = {"num_images": self.num_images, **self._means()}
        head.update(precision=self.precision, recall=self.recall, f1=self.f1)
        return {
            **_json_safe(head),
            "labels": {k: m.to_dict() for k, m in self.per_label.items()},
        }


@dataclass
class DetectionMetrics(_Aggregate):
    """Detection metrics over a set of images; ``map*`` are means over labels with ground truth."""

    @property
    def map50(self) -> float:
        return self._means()["map50"]

    @property
    def map50_95(self) -> float:
        return self._means()["map50_95"]

    @property
    def mar(self) -> float:
        """Mean average recall (COCO AR with every prediction kept)."""
        return self._means()["mar"]


@dataclass
class ClassificationMetrics(_Aggregate):
    """Classification metrics.

    Attributes:
        accuracy: share of images whose predicted label set (at the thresholds) equals the
            ground-truth set; single-label: the most confident label that reaches its
            threshold (none when no label does).
        confusion: int ``(L + 1, L + 1)``: rows ground truth, columns prediction, index ``L``
            is "no label". Multi-label images add one count per (truth, prediction) pair.
    """

    accuracy: float = math.nan
    confusion: IntArray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    @property
    def map50(self) -> float:
        return self._means()["map50"]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["accuracy"] = None if math.isnan(self.accuracy) else round(self.accuracy, 6)
        out["confusion"] = self.confusion.tolist()
        return out


def _label_metrics(
    label: str, matches: LabelMatches, threshold: float | None, single_iou: bool = False
) -> LabelMetrics:
    num_gt = matches.num_gt
    aps = [average_precision(matches.scores, t, num_gt) for t in matches.is_tp]
    best = best_f1_threshold(matches.scores, matches.is_tp[0], num_gt)
    at = (
        best
        if threshold is None
        else scores_at_threshold(matches.scores, matches.is_tp[0], num_gt, threshold)
    )
    ar = _nanmean([t.sum() / num_gt for t in matches.is_tp]) if num_gt else math.nan
    return LabelMetrics(
        label=label,
        num_gt=num_gt,
        num_images=int(np.count_nonzero(matches.gt_per_image)),
        num_predictions=len(matches.scores),
        ap50=aps[0],
        ap50_95=aps[0] if single_iou else _nanmean(aps) if num_gt else math.nan,
        ar=ar,
        curve=pr_curve(matches.scores, matches.is_tp[0], num_gt),
        best=best,
        at_threshold=at,
        matches=matches,
    )


def _check_ids(ids: IntArray, n_labels: int, where: str) -> None:
    if len(ids) and (ids.min() < 0 or ids.max() >= n_labels):
        raise InvalidParameterError(
            f"{where}: expected label ids in 0..{n_labels - 1}, got {sorted(set(ids.tolist()))}"
        )


def detection_metrics(
    gts: Sequence[ImageRecord],
    preds: Sequence[Detections],
    labels: list[str],
    thresholds: dict[str, float] | None = None,
) -> DetectionMetrics:
    """Box-level detection metrics.

    Args:
        gts: ground truth, one record per image (``boxes`` ``xyxy`` pixels, ``box_labels`` ids
            into ``labels``).
        preds: predictions for the same images in the same order (``xyxy`` pixels, 0–1).
        labels: label names; ids in both index this list.
        thresholds: per-label confidence thresholds (0–1) for P/R/F1; missing labels use their
            best-F1 threshold.

    Returns:
        :class:`DetectionMetrics` with per-label AP@0.5, AP@[.5:.95] (as pycocotools with
        area "all" and no cap on detections per image), PR curve, best-F1 and at-threshold scores.
    """
    if len(gts) != len(preds):
        raise InvalidParameterError(
            f"expected one prediction set per image, got {len(preds)} for {len(gts)} images"
        )
    n_img, n_lab, n_thr = len(gts), len(labels), len(IOU_THRESHOLDS)
    scores: list[list[npt.NDArray[np.float64]]] = [[] for _ in labels]
    images: list[list[IntArray]] = [[] for _ in labels]
    flags: list[list[npt.NDArray[np.bool_]]] = [[] for _ in labels]
    gt_counts = np.zeros((n_lab, n_img), dtype=np.int64)
    for i, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
        _check_ids(gt.box_labels, n_lab, f"ground truth of {gt.ref}")
        _check_ids(pred.class_ids, n_lab, f"predictions for {gt.ref}")
        if pred.boxes is None:
            raise InvalidParameterError(f"predictions for {gt.ref}: expected boxes, got None")
        gt_counts[:, i] = np.bincount(gt.box_labels, minlength=n_lab)
        order = np.argsort(-pred.scores, kind="stable")
        p_scores, p_ids, p_boxes = pred.scores[order], pred.class_ids[order], pred.boxes[order]
        for c in np.unique(p_ids):
            pm = p_ids == c
            is_tp = match_boxes(p_boxes[pm], gt.boxes[gt.box_labels == c])
            scores[c].append(p_scores[pm])
            images[c].append(np.full(int(pm.sum()), i, dtype=np.int64))
            flags[c].append(is_tp)
    per_label = {}
    for c, name in enumerate(labels):
        matches = LabelMatches(
            scores=np.concatenate(scores[c]) if scores[c] else np.zeros(0),
            image_index=np.concatenate(images[c]) if images[c] else np.zeros(0, np.int64),
            is_tp=np.concatenate(flags[c], axis=1) if flags[c] else np.zeros((n_thr, 0), bool),
            gt_per_image=gt_counts[c],
        )
        threshold = None if thresholds is None else thresholds.get(name)
        per_label[name] = _label_metrics(name, matches, threshold)
    return DetectionMetrics(labels=list(labels), per_label=per_label, num_images=n_img)


def score_matrix(preds: Sequence[Detections], n_labels: int) -> npt.NDArray[np.float64]:
    """float ``(N, L)``: each image's confidence per label, ``nan`` where not predicted."""
    out = np.full((len(preds), n_labels), math.nan)
    for i, pred in enumerate(preds):
        for c, s in zip(pred.class_ids.tolist(), pred.scores.tolist(), strict=True):
            if math.isnan(out[i, c]) or s > out[i, c]:
                out[i, c] = s
    return out


def kept_labels(
    scores: npt.NDArray[np.float64], thresholds: npt.NDArray[np.float64], multi_label: bool
) -> npt.NDArray[np.bool_]:
    """bool ``(N, L)``: the labels a classifier predicts for each image.

    Args:
        scores: float ``(N, L)`` from :func:`score_matrix` (``nan``: not scored).
        thresholds: float ``(L,)`` per-label thresholds (0–1).
        multi_label: every label at or above its threshold (what ``detect`` returns);
            otherwise only the most confident of those (the first label of the response).
    """
    filled = np.nan_to_num(scores, nan=-1.0)
    above = ~np.isnan(scores) & (filled >= thresholds[None, :])
    if not multi_label and scores.shape[1]:
        top = np.argmax(np.where(above, filled, -np.inf), axis=1)
        only_top = np.zeros_like(above)
        only_top[np.arange(len(scores)), top] = True
        above &= only_top
    return above


def classification_metrics(
    gts: Sequence[ImageRecord],
    preds: Sequence[Detections],
    labels: list[str],
    thresholds: dict[str, float] | None = None,
    multi_label: bool = False,
) -> ClassificationMetrics:
    """Image-level metrics.

    Per label, an image counts as predicted when the label's confidence reaches its threshold,
    exactly as ``detect`` returns labels (P/R/F1 and the counts). Accuracy and the confusion
    matrix of a single-label model use the first label of that response (the most confident
    label that reaches its threshold; "no label" when none does).

    Args:
        gts: ground truth (``image_labels`` ids into ``labels``), one record per image.
        preds: per image, a confidence (0–1) for some or all labels (``boxes`` ignored).
        labels: label names.
        thresholds: per-label thresholds (0–1); missing labels use their best-F1 threshold.
        multi_label: several labels per image (the accuracy and confusion matrix then compare
            label sets); otherwise the top label, if above its threshold, is the prediction.
    """
    if len(gts) != len(preds):
        raise InvalidParameterError(
            f"expected one prediction set per image, got {len(preds)} for {len(gts)} images"
        )
    n_img, n_lab = len(gts), len(labels)
    truth = np.zeros((n_img, n_lab), dtype=bool)
    for i, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
        ids = np.asarray(gt.image_labels, dtype=np.int64)
        _check_ids(ids, n_lab, f"ground truth of {gt.ref}")
        _check_ids(pred.class_ids, n_lab, f"predictions for {gt.ref}")
        truth[i, ids] = True
    score = score_matrix(preds, n_lab)
    per_label = {}
    for c, name in enumerate(labels):
        has = np.flatnonzero(~np.isnan(score[:, c]))
        matches = LabelMatches(
            scores=score[has, c],
            image_index=has.astype(np.int64),
            is_tp=truth[has, c][None, :],
            gt_per_image=truth[:, c].astype(np.int64),
        )
        threshold = None if thresholds is None else thresholds.get(name)
        per_label[name] = _label_metrics(name, matches, threshold, single_iou=True)
    used = np.array([per_label[n].at_threshold.threshold for n in labels])
    above = kept_labels(score, used, multi_label)
    confusion = np.zeros((n_lab + 1, n_lab + 1), dtype=np.int64)
    for i in range(n_img):
        rows = np.flatnonzero(truth[i]).tolist() or [n_lab]
        cols = np.flatnonzero(above[i]).tolist() or [n_lab]
        for r in rows:
            for c in cols:
                confusion[r, c] += 1
    accuracy = float(np.mean(np.all(truth == above, axis=1))) if n_img else math.nan
    return ClassificationMetrics(
        labels=list(labels),
        per_label=per_label,
        num_images=n_img,
        accuracy=accuracy,
        confusion=confusion,
    )
