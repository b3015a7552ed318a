"""Evaluation plots as PNG files (matplotlib's object API on an Agg canvas: no pyplot state,
no display needed).

- :func:`plot_pr_curves`: one panel per label, the PR curve at IoU 0.5 of one or more models,
  the assumed threshold marked with a filled dot and the test-optimal one with a ring.
- :func:`plot_f1_confidence`: F1 against the confidence threshold, per label.
- :func:`plot_confusion`: the classification confusion matrix (counts, rows = truth).
- :func:`plot_reliability`: the reliability diagram (share correct against confidence) of one
  or more series, with the ECE in the legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from customlabels.evaluation.metrics import ClassificationMetrics, DetectionMetrics
from customlabels.evaluation.reliability import Reliability

__all__ = ["plot_confusion", "plot_f1_confidence", "plot_pr_curves", "plot_reliability"]

Metrics = DetectionMetrics | ClassificationMetrics
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return max(1, math.ceil(n / cols)), max(1, cols)


def plot_pr_curves(series: Sequence[tuple[str, Metrics]], path: Path, title: str = "") -> Path:
    """PR curves per label for each ``(name, metrics)`` in ``series`` (labels of the first)."""
    labels = series[0][1].labels
    rows, cols = _grid(len(labels))
    fig = _figure(4.2 * cols, 3.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, labels, strict=False):
        drawn = False
        for k, (model, metrics) in enumerate(series):
            m = metrics.per_label.get(name)
            if m is None or m.num_gt == 0:
                continue
            color = _COLORS[k % len(_COLORS)]
            recall = np.concatenate([[0.0], m.curve.recall])
            precision = np.concatenate([[m.curve.precision[0] if len(m.curve.precision) else 1.0],
                                        m.curve.precision])  # fmt: skip
            tag = f"{model} AP50={m.ap50:.2f}" if model else f"AP50={m.ap50:.2f}"
            ax.plot(recall, precision, color=color, lw=1.6, label=tag, drawstyle="steps-post")
            at, best = m.at_threshold, m.best
            ax.plot([at.recall], [at.precision], "o", color=color, ms=7,
                    label=f"assumed thr {at.threshold:.2f}")  # fmt: skip
            ax.plot([best.recall], [best.precision], "o", mfc="none", mec=color, ms=11, mew=1.5,
                    label=f"test-optimal {best.threshold:.2f} (optimistic)")  # fmt: skip
            drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "no test instances", ha="center", va="center", color="#666")
        ax.set_title(name)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7, loc="lower left")
    for ax in list(axes.flat)[len(labels) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_f1_confidence(metrics: Metrics, path: Path, title: str = "") -> Path:
    """F1 against the confidence threshold, one line per label; dashed: assumed threshold."""
    fig = _figure(7.0, 4.2)
    ax = fig.subplots()
    for k, name in enumerate(metrics.labels):
        m = metrics.per_label[name]
        if m.num_gt == 0 or len(m.curve.thresholds) == 0:
            continue
        color = _COLORS[k % len(_COLORS)]
        ax.plot(m.curve.thresholds, m.curve.f1, color=color, lw=1.5, label=name)
        ax.axvline(m.at_threshold.threshold, color=color, ls="--", lw=1)
        ax.plot([m.best.threshold], [m.best.f1], "o", mfc="none", mec=color, ms=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence threshold")
    ax.set_ylabel("F1")
    ax.grid(alpha=0.3)
    ax.set_title(title or "F1 against confidence (dashed: assumed threshold; ring: test-optimal)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_confusion(metrics: ClassificationMetrics, path: Path, title: str = "") -> Path:
    """Confusion matrix (counts), rows ground truth, columns prediction, last one "(none)"."""
    names = [*metrics.labels, "(none)"]
    cm = metrics.confusion
    n = len(names)
    fig = _figure(1.2 + 0.8 * n, 1.0 + 0.7 * n)
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    top = cm.max() if cm.size else 0
    for r in range(n):
        for c in range(n):
            color = "white" if top and cm[r, c] > top / 2 else "black"
            ax.text(c, r, str(int(cm[r, c])), ha="center", va="center", color=color, fontsize=9)
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title or "confusion matrix (at the assumed thresholds)")
    return _save(fig, path)


def plot_reliability(
    series: Sequence[tuple[str, Reliability]], path: Path, title: str = "", what: str = ""
) -> Path:
    """Reliability diagram: per confidence bin, the share of correct predictions against the
    bin's mean confidence (the diagonal is perfect calibration), marker area ∝ predictions;
    below it, the number of predictions per bin. ``what``: what "correct" means (axis label).
    """
    fig = _figure(6.0, 5.6)
    ax, hist = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfectly calibrated")
    width = 1.0 / max(1, max((len(r.counts) for _, r in series), default=1))
    for k, (name, r) in enumerate(series):
        color = _COLORS[k % len(_COLORS)]
        have = r.counts > 0
        sizes = 20 + 180 * np.sqrt(r.counts[have] / max(1, r.counts.max()))
        ece = "—" if math.isnan(r.ece) else f"{r.ece:.3f}"
        ax.plot(r.confidence[have], r.accuracy[have], "-", color=color, lw=1.2)
        ax.scatter(
            r.confidence[have],
            r.accuracy[have],
            s=sizes,
            color=color,
            alpha=0.8,
            label=f"{name} (ECE {ece}, n={r.n})",
        )
        centres = (r.edges[:-1] + r.edges[1:]) / 2
        off = (k - (len(series) - 1) / 2) * width / max(1, len(series))
        hist.bar(centres + off, r.counts, width=width / max(1, len(series)), color=color, alpha=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel(what or "share correct")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or "reliability (test set)")
    hist.set_yscale("symlog")
    hist.set_xlabel("confidence (0–1)")
    hist.set_ylabel("predictions")
    hist.grid(alpha=0.3)
    return _save(fig, path)
