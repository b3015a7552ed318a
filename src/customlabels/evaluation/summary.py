"""``EvaluationSummary.json`` in the service's shape, the model card's ``metrics.test``, and the
human-readable table.

Service fields (as Rekognition Custom Labels writes them): ``Version``, ``EvaluationDetails``,
``AggregatedEvaluationResults`` {``Precision``, ``Recall``, ``F1Score``, and for detection
``AveragePrecision`` (mAP@0.5) and ``AverageRecall`` (COCO mAR@[.5:.95]), for classification
``ConfusionMatrix``}, ``LabelEvaluationResults[]`` {``Label``, ``Metrics`` {``F1Score``,
``Precision``, ``Recall``, ``Threshold``}, ``NumberOfTestingImages``}, labels sorted by F1.

Our fields sit alongside in the same objects, under names the service does not use:
``AveragePrecision50_95``, ``Intervals95`` (``[low, high]`` per metric), ``TestOptimal``
(threshold and scores if the threshold were chosen on this test set: optimistic),
``ThresholdSource``, ``NumberOfTestingInstances``, ``GroupIntervals95`` (cluster bootstrap over
near-duplicate groups, where the test images have groups); top-level ``Calibration`` (ECE and
reliability bins of the returned confidences and of the raw scores), ``IntervalsCover`` (what
the intervals cover and what not) and ``Warnings``.
Undefined ratios (e.g. recall of a label absent from the test set) are ``null``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from customlabels.evaluation.bootstrap import BootstrapIntervals
from customlabels.evaluation.metrics import ClassificationMetrics, LabelMetrics
from customlabels.evaluation.run import Evaluation

__all__ = [
    "calibration_summary",
    "card_test_metrics",
    "evaluation_summary",
    "format_table",
    "intervals_cover",
]


def _num(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def _label_result(ev: Evaluation, name: str, m: LabelMetrics) -> dict[str, Any]:
    at, best = m.at_threshold, m.best
    iv = ev.intervals.per_label[name]
    out: dict[str, Any] = {
        "Label": name,
        "Metrics": {
            "F1Score": _num(at.f1),
            "Precision": _num(at.precision),
            "Recall": _num(at.recall),
            "Threshold": _num(at.threshold),
        },
        "NumberOfTestingImages": m.num_images,
        "NumberOfTestingInstances": m.num_gt,
        "NumberOfPredictions": at.tp + at.fp,
        "Counts": {"TruePositives": at.tp, "FalsePositives": at.fp, "FalseNegatives": at.fn},
        "AveragePrecision": _num(m.ap50),
        "Intervals95": {
            "Precision": iv["precision"].to_list(),
            "Recall": iv["recall"].to_list(),
            "F1Score": iv["f1"].to_list(),
        },
        "ThresholdSource": ev.threshold_source.get(name, ""),
        "GroupIntervals95": _group_intervals(ev.group_intervals, name),
        "TestOptimal": {
            "Threshold": _num(best.threshold),
            "F1Score": _num(best.f1),
            "Precision": _num(best.precision),
            "Recall": _num(best.recall),
            "Note": "threshold chosen on this test set: optimistic",
        },
    }
    if ev.detection:
        out["AveragePrecision50_95"] = _num(m.ap50_95)
    return out


def _group_intervals(iv: BootstrapIntervals | None, name: str | None) -> dict[str, Any] | None:
    if iv is None:
        return None
    d = iv.overall if name is None else iv.per_label[name]
    return {
        "Precision": d["precision"].to_list(),
        "Recall": d["recall"].to_list(),
        "F1Score": d["f1"].to_list(),
    }


def intervals_cover(ev: Evaluation) -> dict[str, str]:
    """Plain sentences: what the 95 % intervals cover, and what they do not."""
    n = len(ev.records)
    covers = (
        f"Intervals95: drawing another {n} test images like these (the same cameras, scenes "
        "and labelling) — the image-level bootstrap."
    )
    if ev.group_intervals is not None:
        covers += (
            f" GroupIntervals95: drawing other scenes like these — the {n} test images fall "
            f"into {ev.n_groups} groups of near-duplicates (frames of one clip, crops of one "
            "photo), resampled whole: how much the score moves with the scenes drawn."
        )
    elif ev.n_groups is not None:
        covers += " Every test image is its own near-duplicate group: no group-level interval."
    return {
        "Covers": covers,
        "DoesNotCover": (
            "New cameras, places, lighting, seasons or object kinds the test set does not hold, "
            "or a different way of drawing boxes: a model can score outside both intervals "
            "there. Test on images from the new setting to know."
        ),
    }


def calibration_summary(ev: Evaluation) -> dict[str, Any] | None:
    """``Calibration``: ECE and bins of the returned (calibrated) confidences and raw scores."""
    if ev.reliability is None:
        return None
    calibrated = bool(ev.card.calibration)
    return {
        "Calibrated": calibrated,
        "Correct": "true positive at IoU 0.5" if ev.detection else "the image has the label",
        "ECE": ev.reliability.to_dict()["ECE"],
        "ECERaw": ev.raw_reliability.to_dict()["ECE"] if ev.raw_reliability else None,
        "Confidence": ev.reliability.to_dict(),
        "Raw": ev.raw_reliability.to_dict() if ev.raw_reliability else None,
        "Note": (
            "confidences calibrated on the validation split: a detection at confidence c is "
            "right about c of the time; ECE 0 is perfect"
            if calibrated
            else "raw scores: the model card has no calibration (trained before it existed)"
        ),
    }


def _sort_key(item: dict[str, Any]) -> tuple[float, str]:
    f1 = item["Metrics"]["F1Score"]
    return (-(f1 if f1 is not None else -1.0), item["Label"])


def _confusion(m: ClassificationMetrics) -> list[dict[str, Any]]:
    names = [*m.labels, "(none)"]
    rows = m.confusion.sum(axis=1)
    out = []
    for r, truth in enumerate(names):
        for c, predicted in enumerate(names):
            if rows[r] == 0:
                continue
            out.append(
                {
                    "GroundTruthLabel": truth,
                    "PredictedLabel": predicted,
                    "Value": _num(m.confusion[r, c] / rows[r]),
                    "Count": int(m.confusion[r, c]),
                }
            )
    return out


def evaluation_summary(ev: Evaluation, num_training_images: int | None = None) -> dict[str, Any]:
    """The summary dict (JSON-ready; see the module docstring)."""
    m = ev.metrics
    overall = ev.intervals.overall
    if num_training_images is None:
        images = ev.card.dataset.get("images", {}) if isinstance(ev.card.dataset, dict) else {}
        train = images.get("train") if isinstance(images, dict) else None
        num_training_images = len(train) if isinstance(train, list) else None
    aggregated: dict[str, Any] = {
        "Precision": _num(m.precision),
        "Recall": _num(m.recall),
        "F1Score": _num(m.f1),
        "Intervals95": {
            "Precision": overall["precision"].to_list(),
            "Recall": overall["recall"].to_list(),
            "F1Score": overall["f1"].to_list(),
        },
        "GroupIntervals95": _group_intervals(ev.group_intervals, None),
    }
    if isinstance(m, ClassificationMetrics):
        aggregated["Accuracy"] = _num(m.accuracy)
        aggregated["AveragePrecision"] = _num(m.map50)
        aggregated["ConfusionMatrix"] = _confusion(m)
    else:
        aggregated["AveragePrecision"] = _num(m.map50)
        aggregated["AverageRecall"] = _num(m.mar)
        aggregated["AveragePrecision50_95"] = _num(m.map50_95)
    labels = sorted(
        (_label_result(ev, name, lm) for name, lm in m.per_label.items()), key=_sort_key
    )
    return {
        "Version": 1,
        "EvaluationDetails": {
            "ModelVersion": ev.card.version_name,
            "EvaluationEndTimestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "Labels": list(ev.labels),
            "NumberOfTrainingImages": num_training_images,
            "NumberOfTestingImages": len(ev.records),
            "TestManifest": str(ev.test_manifest) if ev.test_manifest else None,
            "Task": ev.card.task.value,
            "MatchingIoU": 0.5 if ev.detection else None,
            "Bootstrap": {
                "Resamples": ev.intervals.n_boot,
                "Seed": ev.intervals.seed,
                "Level": ev.intervals.level,
                "Over": "test images",
                "Groups": ev.n_groups,
            },
            "MedianInferenceMs": _num(ev.median_ms),
        },
        "AggregatedEvaluationResults": aggregated,
        "LabelEvaluationResults": labels,
        "Calibration": calibration_summary(ev),
        "IntervalsCover": intervals_cover(ev),
        "DataAdvice": ev.advice.to_dict() if ev.advice is not None else None,
        "Warnings": list(ev.warnings),
    }


def card_test_metrics(ev: Evaluation) -> dict[str, Any]:
    """The model card's ``metrics.test`` block (0–1 values, ``None`` when undefined)."""
    m = ev.metrics
    out: dict[str, Any] = {
        "num_images": len(ev.records),
        "precision": _num(m.precision),
        "recall": _num(m.recall),
        "f1": _num(m.f1),
        "map50": _num(m.map50),
        "labels": {
            name: {k: (_num(v) if isinstance(v, float) else v) for k, v in lm.to_dict().items()}
            for name, lm in m.per_label.items()
        },
        "ece": _num(ev.reliability.ece) if ev.reliability else None,
        "ece_raw": _num(ev.raw_reliability.ece) if ev.raw_reliability else None,
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "test_manifest": str(ev.test_manifest) if ev.test_manifest else None,
    }
    if isinstance(m, ClassificationMetrics):
        out["accuracy"] = _num(m.accuracy)
    else:
        out["map50_95"] = _num(m.map50_95)
    return out


def _fmt(value: float | None, digits: int = 3) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def _iv(values: list[float | None]) -> str:
    lo, hi = values
    return f"[{_fmt(lo, 2)}, {_fmt(hi, 2)}]"


def format_table(summary: dict[str, Any]) -> str:
    """A plain-text table of the summary, for the terminal."""
    details = summary["EvaluationDetails"]
    agg = summary["AggregatedEvaluationResults"]
    head = (
        f"{'label':<16} {'thr':>5} {'P':>6} {'R':>6} {'F1':>6} {'F1 95% CI':>13} "
        f"{'AP50':>6} {'n':>5} {'opt thr':>7} {'opt F1':>6}"
    )
    lines = [
        f"model {details['ModelVersion'] or '(unnamed)'} on {details['NumberOfTestingImages']} "
        f"test images ({details['Task']})",
        head,
        "-" * len(head),
    ]
    for item in summary["LabelEvaluationResults"]:
        mt, opt = item["Metrics"], item["TestOptimal"]
        lines.append(
            f"{item['Label'][:16]:<16} {_fmt(mt['Threshold'], 2):>5} {_fmt(mt['Precision']):>6} "
            f"{_fmt(mt['Recall']):>6} {_fmt(mt['F1Score']):>6} "
            f"{_iv(item['Intervals95']['F1Score']):>13} {_fmt(item['AveragePrecision']):>6} "
            f"{item['NumberOfTestingInstances']:>5} {_fmt(opt['Threshold'], 2):>7} "
            f"{_fmt(opt['F1Score']):>6}"
        )
    lines.append("-" * len(head))
    overall = (
        f"overall (micro): P {_fmt(agg['Precision'])}  R {_fmt(agg['Recall'])}  "
        f"F1 {_fmt(agg['F1Score'])} {_iv(agg['Intervals95']['F1Score'])}"
    )
    if "AverageRecall" in agg:
        overall += (
            f"  mAP@0.5 {_fmt(agg['AveragePrecision'])}  "
            f"mAP@[.5:.95] {_fmt(agg['AveragePrecision50_95'])}  mAR {_fmt(agg['AverageRecall'])}"
        )
    else:
        overall += f"  accuracy {_fmt(agg['Accuracy'])}"
    lines.append(overall)
    group = agg.get("GroupIntervals95")
    if group:
        lines.append(
            f"F1 95% interval over {details['Bootstrap']['Groups']} near-duplicate groups "
            f"(other scenes like these): {_iv(group['F1Score'])}"
        )
    cal = summary.get("Calibration")
    if cal:
        raw = f" (raw scores: {_fmt(cal['ECERaw'])})" if cal["ECERaw"] is not None else ""
        lines.append(
            f"calibration error (ECE, 0 = confidences mean what they say): {_fmt(cal['ECE'])}" + raw
        )
    lines.append(
        "thr: assumed threshold (validation split); opt: test-set-optimal threshold "
        "(optimistic); n: test instances"
    )
    if summary.get("DataAdvice"):
        from customlabels.datasets.advice import DataAdvice

        lines.append(DataAdvice.from_dict(summary["DataAdvice"]).format_table())
    lines.append(f"intervals: {summary['IntervalsCover']['Covers']}")
    lines.append(f"not covered: {summary['IntervalsCover']['DoesNotCover']}")
    lines += [f"warning: {w}" for w in summary["Warnings"]]
    return "\n".join(lines)
