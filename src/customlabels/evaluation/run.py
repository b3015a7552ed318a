"""The ``evaluate`` use case: run a model version on a test manifest and judge it honestly.

This module sits above inference (it loads a :class:`~customlabels.inference.predictor.Predictor`
on demand, never torch) and above formats (it reads the test manifest through the Ground Truth
importer). The metric code it calls stays pure numpy.

Honest thresholds: each label is scored at its *assumed* threshold from the model card (best F1
on the validation split, chosen by training). The threshold that would be best on the test set
is reported beside it and labelled optimistic. A label without a card threshold falls back to
the test-optimal one, and the summary says so.

Honest intervals: the image-level bootstrap covers the sampling of test images like these;
where the test images fall into near-duplicate groups (frames of one clip, crops of one
photo), a group-level (cluster) bootstrap is given beside it: how much the score moves with
the scenes drawn. Neither covers new cameras, places, seasons or labelling habits.

Calibration: the reliability of the model's confidences on the test set (ECE, bins), and of
its raw scores when the card carries a calibration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from customlabels.core.dataset import Dataset, ImageRecord, Task
from customlabels.core.detections import Detections
from customlabels.core.model_card import ModelCard
from customlabels.datasets.advice import DataAdvice, with_test
from customlabels.errors import DatasetError, InvalidParameterError
from customlabels.evaluation.bootstrap import BootstrapIntervals, bootstrap_intervals
from customlabels.evaluation.metrics import (
    ClassificationMetrics,
    DetectionMetrics,
    classification_metrics,
    detection_metrics,
)
from customlabels.evaluation.outcomes import ImageOutcome, image_outcomes
from customlabels.evaluation.reliability import Reliability, pooled_outcomes, reliability

__all__ = [
    "MIN_TEST_INSTANCES",
    "Evaluation",
    "PredictorLike",
    "evaluate",
    "evaluate_predictions",
    "load_test_set",
    "open_image",
    "run_predictions",
]

log = logging.getLogger(__name__)

#: Below this many test instances of a label, its scores come with a warning.
MIN_TEST_INSTANCES = 20

SOURCE_VALIDATION = "validation"
SOURCE_TEST = "test (no threshold in the model card: optimistic)"


class PredictorLike(Protocol):
    """What evaluation needs from a model: its card and ``predict(image) -> Detections``."""

    @property
    def card(self) -> ModelCard: ...

    def predict(self, image: Image.Image) -> Detections: ...


@dataclass
class Evaluation:
    """A model judged on a test set (see the module docstring for the thresholds).

    Attributes:
        card: the model card of the evaluated model.
        records: test images, labels re-indexed to ``card.labels``.
        preds: the model's raw predictions (every confidence the decoder kept), same order.
        seconds: wall time of each ``predict`` call (decode + preprocess + ONNX run).
        metrics: at the assumed thresholds; ``best`` in each label is the test-optimal one.
        intervals: bootstrap intervals at the assumed thresholds.
        threshold_source: per label, where its threshold came from.
        warnings: human-readable warnings (few test instances, labels unknown to the model, ...).
        group_intervals: cluster-bootstrap intervals over near-duplicate groups (``None`` when
            every test image is its own group or groups were not computed).
        n_groups: number of near-duplicate groups among the test images (``None``: unknown).
        reliability: reliability of the confidences the model returns (calibrated if the card
            has a calibration), all labels together.
        raw_reliability: the same for the raw scores (``None`` without a calibration).
        advice: per label, training/validation counts from the card and this test set's,
            with plain advice (``None``: not computed).
    """

    card: ModelCard
    records: list[ImageRecord]
    preds: list[Detections]
    seconds: list[float]
    metrics: DetectionMetrics | ClassificationMetrics
    intervals: BootstrapIntervals
    threshold_source: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    test_manifest: Path | None = None
    group_intervals: BootstrapIntervals | None = None
    n_groups: int | None = None
    reliability: Reliability | None = None
    raw_reliability: Reliability | None = None
    advice: DataAdvice | None = None

    @property
    def detection(self) -> bool:
        return self.card.task == Task.OBJECT_LOCALIZATION

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    @property
    def thresholds(self) -> dict[str, float]:
        return self.metrics.thresholds

    @property
    def median_ms(self) -> float:
        return float(np.median(self.seconds) * 1000) if self.seconds else float("nan")

    def outcomes(self) -> list[ImageOutcome]:
        """TP / FP / miss per image at the assumed thresholds."""
        return image_outcomes(
            self.records,
            self.preds,
            self.labels,
            self.thresholds,
            detection=self.detection,
            multi_label=self.card.multi_label,
        )


def _remap(dataset: Dataset, labels: list[str], task: Task) -> tuple[list[ImageRecord], list[str]]:
    """Re-index the test labels to the model's; labels the model does not know are dropped."""
    index = {name: i for i, name in enumerate(labels)}
    table = np.array([index.get(name, -1) for name in dataset.labels.names] or [-1])
    dropped: dict[str, int] = {}
    out = []
    for rec in dataset.images:
        ids = table[rec.box_labels] if len(rec.box_labels) else rec.box_labels
        for old in rec.box_labels[ids < 0].tolist():
            name = dataset.labels.name_of(old)
            dropped[name] = dropped.get(name, 0) + 1
        image_labels = []
        for old in rec.image_labels:
            new = int(table[old])
            if new < 0:
                name = dataset.labels.name_of(old)
                dropped[name] = dropped.get(name, 0) + 1
            else:
                image_labels.append(new)
        keep = ids >= 0
        out.append(
            replace(rec, boxes=rec.boxes[keep], box_labels=ids[keep], image_labels=image_labels)
        )
    warnings = [
        f"test label {name!r} ({n} instance(s)) is not a label of the model: ignored"
        for name, n in sorted(dropped.items())
    ]
    if task == Task.OBJECT_LOCALIZATION and not any(len(r.boxes) for r in out):
        raise DatasetError("the test manifest has no bounding boxes of the model's labels")
    return out, warnings


def load_test_set(
    test_manifest: Path,
    labels: list[str],
    task: Task,
    bucket_map: dict[str, Path] | None = None,
) -> tuple[list[ImageRecord], list[str]]:
    """Read a Ground Truth test manifest; labels re-indexed to ``labels``; returns warnings
    (lines the importer skipped, boxes it dropped, labels the model does not know)."""
    from collections import Counter

    from customlabels.formats.groundtruth import load_ground_truth
    from customlabels.formats.report import ValidationReport

    report = ValidationReport()
    dataset = load_ground_truth(Path(test_manifest), bucket_map=bucket_map, report=report)
    if not dataset.images:
        raise DatasetError(f"{test_manifest}: no usable test images")
    records, warnings = _remap(dataset, labels, task)
    if report.errors:
        codes = Counter(issue.code for issue in report.errors)
        summary = ", ".join(f"{code} ×{n}" for code, n in codes.most_common())
        warnings.insert(
            0,
            f"test manifest: {len(report.invalid_lines)} of {report.total_lines} line(s) "
            f"skipped and {len(report.errors)} problem(s) ({summary}); the scores cover the "
            f"{len(records)} usable image(s)",
        )
    return records, warnings


def open_image(record: ImageRecord) -> Image.Image:
    """Decode a record's local image (RGB, EXIF orientation applied, size limits checked)."""
    from customlabels.io.images import decode_image

    if record.path is None:
        raise InvalidParameterError(
            f"{record.ref} (line {record.line}): no local file for this image; map its bucket "
            "to a folder"
        )
    return decode_image(Path(record.path).read_bytes())


def run_predictions(
    predictor: PredictorLike, records: Sequence[ImageRecord]
) -> tuple[list[Detections], list[float]]:
    """Predict every record; returns the detections and the seconds each ``predict`` took."""
    preds, seconds = [], []
    for rec in records:
        image = open_image(rec)
        start = time.perf_counter()
        preds.append(predictor.predict(image))
        seconds.append(time.perf_counter() - start)
    return preds, seconds


def _assumed_thresholds(card: ModelCard) -> tuple[dict[str, float], dict[str, str]]:
    thresholds = {k: float(v) for k, v in card.thresholds.items() if k in card.labels}
    source = {
        name: SOURCE_VALIDATION if name in thresholds else SOURCE_TEST for name in card.labels
    }
    return thresholds, source


def evaluate_predictions(
    card: ModelCard,
    records: list[ImageRecord],
    preds: list[Detections],
    seconds: list[float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    min_instances: int = MIN_TEST_INSTANCES,
    groups: np.ndarray | None = None,
) -> Evaluation:
    """Score predictions already made (records' labels index ``card.labels``).

    ``groups``: ``(N,)`` near-duplicate group per record, for the cluster bootstrap.
    """
    thresholds, source = _assumed_thresholds(card)
    metrics = _score(card, records, preds, thresholds)
    intervals = bootstrap_intervals(metrics.per_label, len(records), n_boot=n_boot, seed=seed)
    n_groups = None if groups is None else len(np.unique(groups))
    group_intervals = None
    if groups is not None and n_groups is not None and n_groups < len(records):
        group_intervals = bootstrap_intervals(
            metrics.per_label, len(records), n_boot=n_boot, seed=seed, groups=groups
        )
    raw_reliability = None
    if card.calibration and any(p.raw_scores is not None for p in preds):
        raw = _score(card, records, [p.raw() for p in preds], thresholds)
        raw_reliability = reliability(*pooled_outcomes(raw.per_label))
    unit = "box(es)" if card.task == Task.OBJECT_LOCALIZATION else "image(s)"
    warnings = [
        f"label {name!r} has no test {unit}: its recall and AP are undefined"
        if m.num_gt == 0
        else f"label {name!r} has only {m.num_gt} test {unit} (< {min_instances}): its scores "
        "are uncertain; see the 95% intervals"
        for name, m in metrics.per_label.items()
        if m.num_gt < min_instances
    ]
    warnings += [
        f"label {name!r} has no threshold in the model card: scored at the test-optimal "
        "threshold (optimistic)"
        for name, s in source.items()
        if s == SOURCE_TEST
    ]
    for name, ev in (card.calibration.get("evidence") or {}).items():
        if ev.get("threshold", "validation") != "validation":
            warnings.append(f"label {name!r}: threshold {ev['threshold']}")
    return Evaluation(
        card,
        records,
        preds,
        seconds or [],
        metrics,
        intervals,
        source,
        warnings,
        group_intervals=group_intervals,
        n_groups=n_groups,
        reliability=reliability(*pooled_outcomes(metrics.per_label)),
        raw_reliability=raw_reliability,
    )


def _score(
    card: ModelCard,
    records: list[ImageRecord],
    preds: list[Detections],
    thresholds: dict[str, float],
) -> DetectionMetrics | ClassificationMetrics:
    if card.task == Task.OBJECT_LOCALIZATION:
        return detection_metrics(records, preds, card.labels, thresholds)
    return classification_metrics(
        records, preds, card.labels, thresholds, multi_label=card.multi_label
    )


def evaluate(
    model_dir: Path,
    test_manifest: Path,
    *,
    predictor: PredictorLike | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    threads: int = 1,
    bucket_map: dict[str, Path] | None = None,
) -> Evaluation:
    """Load the model (unless ``predictor`` is given), predict the test set and score it."""
    if predictor is None:
        from customlabels.inference.predictor import Predictor

        predictor = Predictor.load(Path(model_dir), threads=threads)
    card = predictor.card
    records, warnings = load_test_set(Path(test_manifest), card.labels, card.task, bucket_map)
    log.info("evaluating %s on %d test images", model_dir, len(records))
    preds, seconds = run_predictions(predictor, records)
    from customlabels.datasets.groups import find_groups

    groups = find_groups(records)
    ev = evaluate_predictions(
        card, records, preds, seconds, n_boot=n_boot, seed=seed, groups=groups
    )
    stored = card.dataset.get("advice") if isinstance(card.dataset, dict) else None
    ev.advice = with_test(
        DataAdvice.from_dict(stored) if stored else None,
        card.labels,
        records,
        groups,
        detection=ev.detection,
    )
    ev.warnings[:0] = warnings
    ev.test_manifest = Path(test_manifest)
    return ev
