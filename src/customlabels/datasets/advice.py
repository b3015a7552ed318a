"""Data advice: per label, how much independent evidence there is, and what to do about it.

A person without ML training cannot read "drone AP 0.02" as "every drone image comes from one
video". This module counts, per label: images, boxes, **independent groups** (the split's
near-duplicate groups, :mod:`customlabels.datasets.groups`: frames of one clip, crops of one
photo, re-uploads) and the images and instances in the validation and test splits, and turns
the counts into plain sentences, each with a number and an action:

- fewer than :data:`MIN_IMAGES` images, or one image: the label cannot be learnt and measured;
- fewer than :data:`MIN_GROUPS` groups (in training when a split is known): the model sees one
  or a few scenes and will not recognise the object elsewhere;
- fewer than :data:`MIN_VALIDATION` validation instances: its threshold and its calibration
  fall back (mostly) to the pooled ones of all labels, a guess — said, not silent;
- fewer than :data:`MIN_TEST` test instances (or test images from one group): its test score
  is uncertain or says little about other scenes.

The validation split's size (:func:`validation_fraction`) is decided here too, so that ``train``
and the advice before training agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.core.dataset import Dataset, ImageRecord

__all__ = [
    "MIN_GROUPS",
    "MIN_IMAGES",
    "MIN_TEST",
    "MIN_VALIDATION",
    "MIN_VALIDATION_IMAGES",
    "DataAdvice",
    "LabelEvidence",
    "advise_dataset",
    "data_advice",
    "planned_splits",
    "validation_fraction",
    "with_test",
]

#: Images of a label below which it cannot be learnt and measured reliably.
MIN_IMAGES = 10
#: Independent groups (scenes) of a label's training images below which the model will not
#: generalise to new scenes.
MIN_GROUPS = 5
#: Validation instances (boxes or images) below which a label's threshold is (mostly) pooled.
MIN_VALIDATION = 10
#: Test instances below which a label's test scores are uncertain.
MIN_TEST = 20
#: Validation images wanted at least (when the data allows: at most a third of it).
MIN_VALIDATION_IMAGES = 30
#: Validation share of the training manifest when the test split comes separately.
SEPARATE_TEST_VALIDATION = 0.25


def validation_fraction(configured: float, n_images: int, test_given: bool) -> float:
    """The share of the training images kept for validation.

    - With a test manifest given separately, the training manifest is all there is to carve
      from, so validation takes :data:`SEPARATE_TEST_VALIDATION` (25 %) of it instead of
      ``configured`` (``eval.validation_fraction``, 0.15 — of the 80 % left after the automatic
      test split, i.e. 12 % of the data). More validation boxes make checkpoint choice,
      thresholds and calibration less of a guess for rare labels.
    - At least :data:`MIN_VALIDATION_IMAGES` images (at most a third of them).
    """
    share = max(configured, SEPARATE_TEST_VALIDATION) if test_given else configured
    if n_images:
        share = max(share, min(MIN_VALIDATION_IMAGES, n_images / 3) / n_images)
    return float(min(share, 0.5))


@dataclass
class LabelEvidence:
    """Counts of one label (``None``: that split is not known)."""

    label: str
    images: int
    instances: int
    groups: int
    train_images: int | None = None
    train_groups: int | None = None
    validation_images: int | None = None
    validation_instances: int | None = None
    test_images: int | None = None
    test_instances: int | None = None
    test_groups: int | None = None


@dataclass
class DataAdvice:
    """Per-label evidence and the advice sentences (``detection``: instances are boxes)."""

    labels: list[LabelEvidence]
    advice: list[str] = field(default_factory=list)
    detection: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": [asdict(e) for e in self.labels],
            "advice": list(self.advice),
            "detection": self.detection,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataAdvice:
        """Read :meth:`to_dict`'s output (as stored in ``model.json`` ``dataset.advice``)."""
        return cls(
            [LabelEvidence(**e) for e in data.get("labels", [])],
            [str(a) for a in data.get("advice", [])],
            bool(data.get("detection", True)),
        )

    def format_table(self) -> str:
        """A plain-text table, then the advice, for the terminal and the training log."""
        unit = "boxes" if self.detection else "imgs"
        head = (
            f"{'label':<14} {'images':>6} {unit:>6} {'groups':>6} {'val img':>7} "
            f"{'val ' + unit:>9} {'test img':>8} {'test ' + unit:>10}"
        )

        def fmt(v: int | None) -> str:
            return "—" if v is None else str(v)

        lines = [head]
        for e in self.labels:
            lines.append(
                f"{e.label[:14]:<14} {e.images:>6} {e.instances:>6} {e.groups:>6} "
                f"{fmt(e.validation_images):>7} {fmt(e.validation_instances):>9} "
                f"{fmt(e.test_images):>8} {fmt(e.test_instances):>10}"
            )
        lines.append("groups: independent scenes (near-duplicate frames and crops count once)")
        lines += [f"advice: {a}" for a in self.advice] or [
            "advice: none — every label has enough images, scenes and splits"
        ]
        return "\n".join(lines)


def with_test(
    before: DataAdvice | None,
    labels: Sequence[str],
    test: Sequence[ImageRecord],
    groups: npt.NDArray[np.int64] | None,
    detection: bool,
) -> DataAdvice:
    """The advice after training: the training-time counts (``before``, from the model card;
    ``None`` for an older card) with the test counts of the test set actually evaluated."""
    now = data_advice(labels, {"test": test}, groups, detection)
    old = {e.label: e for e in before.labels} if before is not None else {}
    rows = []
    for e in now.labels:
        row = old.get(e.label)
        if row is None:
            row = LabelEvidence(e.label, e.images, e.instances, e.groups)
        else:
            row = replace(row)
        row.test_images, row.test_instances, row.test_groups = (
            e.test_images,
            e.test_instances,
            e.test_groups,
        )
        rows.append(row)
    return DataAdvice(rows, [a for e in rows for a in _advise(e, detection)], detection)


def _counts(
    records: Sequence[ImageRecord], n_labels: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(images, instances)`` per label (instances: boxes, or image-level labels)."""
    images = np.zeros(n_labels, dtype=np.int64)
    instances = np.zeros(n_labels, dtype=np.int64)
    for r in records:
        ids = np.concatenate([np.asarray(r.box_labels, dtype=np.int64), r.image_labels])
        ids = ids.astype(np.int64)
        np.add.at(instances, ids, 1)
        images[np.unique(ids)] += 1
    return images, instances


def _groups(
    records: Sequence[ImageRecord], gid: npt.NDArray[np.int64], n_labels: int
) -> npt.NDArray[np.int64]:
    seen: list[set[int]] = [set() for _ in range(n_labels)]
    for r, g in zip(records, gid.tolist(), strict=True):
        for k in set(np.asarray(r.box_labels).tolist()) | set(r.image_labels):
            seen[int(k)].add(int(g))
    return np.array([len(s) for s in seen], dtype=np.int64)


def data_advice(
    labels: Sequence[str],
    splits: Mapping[str, Sequence[ImageRecord]],
    groups: npt.NDArray[np.int64] | None = None,
    detection: bool = True,
) -> DataAdvice:
    """Count and advise.

    Args:
        labels: label names (record label ids index them).
        splits: ``{"train"|"validation"|"test"|"all": records}``; the splits present are
            counted (``all`` when no split is known yet).
        groups: near-duplicate group id per record, in the order of ``splits``' records
            concatenated (computed with :func:`find_groups` when ``None``).
    """
    from customlabels.datasets.groups import find_groups

    order = [s for s in ("all", "train", "validation", "test") if s in splits]
    records = [r for s in order for r in splits[s]]
    gid = find_groups(records) if groups is None else np.asarray(groups)
    k = len(labels)
    images, instances = _counts(records, k)
    n_groups = _groups(records, gid, k)
    start, by_split = 0, {}
    for s in order:
        n = len(splits[s])
        recs, g = splits[s], gid[start : start + n]
        by_split[s] = (*_counts(recs, k), _groups(recs, g, k))
        start += n
    rows = []
    for i, name in enumerate(labels):
        e = LabelEvidence(name, int(images[i]), int(instances[i]), int(n_groups[i]))
        if "train" in by_split:
            e.train_images = int(by_split["train"][0][i])
            e.train_groups = int(by_split["train"][2][i])
        if "validation" in by_split:
            e.validation_images, e.validation_instances = (
                int(by_split["validation"][0][i]),
                int(by_split["validation"][1][i]),
            )
        if "test" in by_split:
            e.test_images, e.test_instances, e.test_groups = (int(x[i]) for x in by_split["test"])
        rows.append(e)
    return DataAdvice(rows, [a for e in rows for a in _advise(e, detection)], detection)


def _n(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _advise(e: LabelEvidence, detection: bool) -> list[str]:
    unit = "boxes" if detection else "images"
    out = []
    if e.images <= 1:
        return [
            f"{e.label}: only {e.images} image — it cannot be both learnt and tested; add at "
            f"least {MIN_IMAGES - e.images} more images of {e.label}, from different scenes."
        ]
    if e.images < MIN_IMAGES:
        out.append(
            f"{e.label}: only {e.images} images — too few to learn it reliably; add at least "
            f"{MIN_IMAGES - e.images} more, from different scenes."
        )
    scenes = e.groups if e.train_groups is None else e.train_groups
    where = "" if e.train_groups is None else "training "
    if scenes < MIN_GROUPS:
        have = (
            f"all {e.images} images come"
            if e.train_groups is None
            else f"all {e.train_images} training images come"
        )
        more = MIN_GROUPS - scenes
        out.append(
            f"{e.label}: {have} from {_n(scenes, 'scene')} (near-duplicate {where}groups) — the "
            f"model will not recognise {e.label} elsewhere; add images from at least "
            f"{_n(more, 'other scene')}."
        )
    if e.validation_instances is not None and e.validation_instances < MIN_VALIDATION:
        fallback = (
            "the pooled ones of all labels"
            if e.validation_instances == 0
            else "mostly the pooled ones"
        )
        out.append(
            f"{e.label}: {e.validation_instances} validation {unit} — its threshold and "
            f"confidence calibration are {fallback}, a guess; add images of {e.label} so that "
            f"validation holds at least {MIN_VALIDATION} {unit}."
        )
    if e.test_instances is not None:
        if e.test_instances == 0:
            out.append(
                f"{e.label}: no test {unit} — its score cannot be measured; add test images "
                f"of {e.label}."
            )
        elif e.test_instances < MIN_TEST:
            out.append(
                f"{e.label}: {e.test_instances} test {unit} — its test scores are uncertain "
                f"(see the intervals); aim for at least {MIN_TEST}."
            )
        if e.test_groups == 1 and (e.test_images or 0) > 1:
            come = f"all {e.test_images} test images come"
            out.append(
                f"{e.label}: {come} from 1 scene — its test score says little about other "
                "scenes; add test images from other scenes."
            )
    return out


def planned_splits(
    dataset: Dataset,
    test: Dataset | None = None,
    test_fraction: float = 0.2,
    validation_share: float = 0.15,
    seed: int = 0,
) -> dict[str, list[ImageRecord]]:
    """The splits ``train`` would make of ``dataset`` (and a separate ``test``) with the
    default settings: group-aware test split (unless given), then validation by
    :func:`validation_fraction` — for advice before training."""
    from customlabels.datasets.split import split_dataset

    given = test is not None
    if test is None:
        train_part, test = split_dataset(dataset, test_fraction, seed)
    else:
        train_part = dataset
    share = validation_fraction(validation_share, len(train_part), test_given=given)
    train, validation = split_dataset(train_part, share, seed + 1)
    return {"train": train.images, "validation": validation.images, "test": test.images}


def advise_dataset(dataset: Dataset, test: Dataset | None = None) -> DataAdvice:
    """Advice before training: the counts in the splits ``train`` would make by default."""
    from customlabels.core.dataset import Task

    splits = planned_splits(dataset, test)
    return data_advice(
        dataset.labels.names, splits, detection=dataset.task == Task.OBJECT_LOCALIZATION
    )
