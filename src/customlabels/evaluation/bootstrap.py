"""How much a score on a small test set can be trusted: bootstrap over test images.

Images (not boxes) are resampled with replacement, because boxes of one image are not
independent. Each resample re-counts the true positives, false positives and ground truth of
the predictions kept at each label's threshold; the interval is the central ``level`` share of
the resampled scores (percentile bootstrap). Everything is seeded, so a report is reproducible.

For two models evaluated on the same images, :func:`paired_difference` resamples the SAME
images for both and reports the interval of the F1 difference: the difference is called
significant when that interval does not contain 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.evaluation.metrics import LabelMatches, LabelMetrics

__all__ = [
    "BootstrapIntervals",
    "Interval",
    "PairedDifference",
    "bootstrap_intervals",
    "paired_difference",
    "resample_weights",
]

FloatArray = npt.NDArray[np.float64]
METRICS = ("precision", "recall", "f1")


@dataclass(frozen=True)
class Interval:
    """A two-sided interval; ``nan`` ends when the metric is undefined in every resample."""

    low: float
    high: float

    def to_list(self) -> list[float | None]:
        return [None if math.isnan(v) else round(v, 6) for v in (self.low, self.high)]


@dataclass(frozen=True)
class BootstrapIntervals:
    """Intervals of precision, recall and F1, per label and for the micro average.

    Attributes:
        per_label: ``{label: {"precision"|"recall"|"f1": Interval}}``.
        overall: the same keys, micro-averaged over labels.
        n_boot, seed, level: how they were computed.
    """

    per_label: dict[str, dict[str, Interval]]
    overall: dict[str, Interval]
    n_boot: int
    seed: int
    level: float
    over: str = "test images"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": f"percentile bootstrap over {self.over}",
            "resamples": self.n_boot,
            "seed": self.seed,
            "level": self.level,
            "overall": {k: v.to_list() for k, v in self.overall.items()},
            "labels": {
                name: {k: v.to_list() for k, v in d.items()} for name, d in self.per_label.items()
            },
        }


@dataclass(frozen=True)
class PairedDifference:
    """F1 of model B minus F1 of model A on the same images, with its bootstrap interval."""

    difference: float
    interval: Interval
    p_value: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        lo, hi = self.interval.low, self.interval.high
        return not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "f1_difference": None if math.isnan(self.difference) else round(self.difference, 6),
            "interval": self.interval.to_list(),
            "p_value": None if math.isnan(self.p_value) else round(self.p_value, 6),
            "significant": self.significant,
        }


def resample_weights(
    n_images: int,
    n_boot: int = 1000,
    seed: int = 0,
    groups: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.int64]:
    """int ``(n_boot, n_images)``: how many times each image is drawn in each resample.

    With ``groups`` (``(n_images,)`` group id per image), whole groups are drawn with
    replacement (a cluster bootstrap) and each image counts as often as its group was drawn.
    """
    if groups is None:
        units, per_image = n_images, None
    else:
        _, per_image = np.unique(np.asarray(groups), return_inverse=True)
        units = int(per_image.max()) + 1 if len(per_image) else 0
    if units == 0:
        return np.zeros((n_boot, n_images), dtype=np.int64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, units, size=(n_boot, units))
    flat = (draws + np.arange(n_boot)[:, None] * units).ravel()
    counts = np.bincount(flat, minlength=n_boot * units).reshape(n_boot, units)
    return counts if per_image is None else counts[:, per_image]


def _ratios(tp: FloatArray, fp: FloatArray, gt: FloatArray) -> dict[str, FloatArray]:
    """Vectorized :func:`customlabels.evaluation.curves.ratios` (same 0/0 conventions)."""
    kept = tp + fp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(kept > 0, tp / kept, np.where(gt > 0, 0.0, np.nan))
        recall = np.where(gt > 0, tp / gt, np.nan)
        f1 = np.where(kept + gt > 0, 2 * tp / (kept + gt), np.nan)
    return {"precision": precision, "recall": recall, "f1": f1}


def _counts(
    labels: Sequence[LabelMetrics], weights: npt.NDArray[np.int64]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Resampled ``(tp, fp, gt)``, each float ``(B,)``, summed over ``labels``."""
    tp = np.zeros(len(weights))
    fp = np.zeros(len(weights))
    gt = np.zeros(len(weights))
    for m in labels:
        t, f, g = _per_image(m.matches, m.at_threshold.threshold)
        tp += weights @ t
        fp += weights @ f
        gt += weights @ g
    return tp, fp, gt


def _per_image(matches: LabelMatches, threshold: float) -> tuple[FloatArray, ...]:
    return tuple(x.astype(np.float64) for x in matches.per_image_counts(threshold))


def _interval(values: FloatArray, level: float) -> Interval:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return Interval(math.nan, math.nan)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    return Interval(float(lo), float(hi))


def bootstrap_intervals(
    per_label: dict[str, LabelMetrics],
    n_images: int,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    groups: npt.NDArray[np.int64] | None = None,
) -> BootstrapIntervals:
    """Percentile-bootstrap intervals of P/R/F1 at each label's threshold (``at_threshold``).

    Args:
        per_label: ``DetectionMetrics.per_label`` or ``ClassificationMetrics.per_label``.
        n_images: number of evaluated images (the length of each ``gt_per_image``).
        groups: ``(n_images,)`` near-duplicate group per image: resample whole groups (how
            much the score moves with the scenes drawn, not only the images).
    """
    weights = resample_weights(n_images, n_boot, seed, groups)
    out: dict[str, dict[str, Interval]] = {}
    for name, m in per_label.items():
        r = _ratios(*_counts([m], weights))
        out[name] = {k: _interval(r[k], level) for k in METRICS}
    r = _ratios(*_counts(list(per_label.values()), weights))
    overall = {k: _interval(r[k], level) for k in METRICS}
    over = "test images" if groups is None else "groups of near-duplicate test images"
    return BootstrapIntervals(out, overall, n_boot, seed, level, over)


def paired_difference(
    a: Sequence[LabelMetrics],
    b: Sequence[LabelMetrics],
    n_images: int,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedDifference:
    """Paired bootstrap of ``F1(b) - F1(a)`` (micro over the given labels) on the same images.

    ``p_value`` is the two-sided share of resamples whose difference has the other sign from
    the observed one (a bootstrap approximation, reported for orientation).
    """
    weights = resample_weights(n_images, n_boot, seed)
    f1_a = _ratios(*_counts(a, weights))["f1"]
    f1_b = _ratios(*_counts(b, weights))["f1"]
    ones = np.ones((1, n_images), dtype=np.int64)
    observed = float(_ratios(*_counts(b, ones))["f1"][0] - _ratios(*_counts(a, ones))["f1"][0])
    diff = f1_b - f1_a
    finite = diff[np.isfinite(diff)]
    if len(finite) == 0 or math.isnan(observed):
        p_value = math.nan
    elif observed == 0:
        p_value = 1.0
    else:
        other_side = np.mean(finite <= 0) if observed > 0 else np.mean(finite >= 0)
        p_value = min(1.0, 2 * float(other_side))
    return PairedDifference(observed, _interval(diff, level), p_value)
