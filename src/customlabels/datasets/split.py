"""Group-aware, label-stratified train/test split.

Near-duplicates (see :mod:`customlabels.datasets.groups`) are kept on the same side, so frames
of one clip never sit on both sides and flatter the test score. Whole groups are then assigned:

1. groups holding the rarest labels first (random order among equals, from ``seed``), each to
   the test side while one of its labels still has fewer test images than its share
   (``max(1, round(test_fraction × images))`` for labels with ≥ 2 images), as long as every
   label keeps at least one training image and the test side stays near its target size;
2. then the remaining groups, in random order, fill the test side up to
   ``round(test_fraction × images)``;
3. a label with ≥ 2 images still missing from the test side gets the group with the fewest of
   its images that keeps one in train,
   unless all its images are one group, which is reported.

The result is deterministic for a given dataset order and ``seed``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.core.dataset import Dataset, Split
from customlabels.datasets.groups import GroupConfig, find_groups
from customlabels.errors import InvalidParameterError

__all__ = ["SplitPlan", "label_presence", "plan_split", "split_dataset"]

log = logging.getLogger(__name__)


def label_presence(dataset: Dataset) -> npt.NDArray[np.bool_]:
    """``(N, L)`` bool: image ``i`` carries label ``l`` (as a box or an image-level label)."""
    m = np.zeros((len(dataset), len(dataset.labels)), dtype=bool)
    for i, im in enumerate(dataset.images):
        m[i, im.box_labels] = True
        m[i, im.image_labels] = True
    return m


@dataclass
class SplitPlan:
    """Where each image goes.

    Attributes:
        groups: ``(N,)`` group id per image (near-duplicates share one).
        is_test: ``(N,)`` True for test images.
        warnings: labels that could not be put on both sides, and why.
        label_names: the dataset's labels, for :meth:`summary`.
        presence: ``(N, L)`` label presence.
    """

    groups: npt.NDArray[np.int64]
    is_test: npt.NDArray[np.bool_]
    label_names: list[str]
    presence: npt.NDArray[np.bool_]
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        sizes = np.bincount(np.unique(self.groups, return_inverse=True)[1])
        test = self.presence[self.is_test].sum(0)
        train = self.presence[~self.is_test].sum(0)
        return {
            "images": len(self.is_test),
            "train_images": int((~self.is_test).sum()),
            "test_images": int(self.is_test.sum()),
            "groups": len(sizes),
            "largest_group": int(sizes.max()) if len(sizes) else 0,
            "grouped_images": int(sizes[sizes > 1].sum()) if len(sizes) else 0,
            "labels": {
                name: {"train_images": int(train[k]), "test_images": int(test[k])}
                for k, name in enumerate(self.label_names)
            },
            "warnings": list(self.warnings),
        }


def plan_split(
    dataset: Dataset,
    test_fraction: float = 0.2,
    seed: int = 0,
    config: GroupConfig | None = None,
    groups: npt.NDArray[np.int64] | None = None,
) -> SplitPlan:
    """Decide the side of every image (see the module docstring for the method).

    Args:
        dataset: the images to split.
        test_fraction: share of images for the test side, in ``(0, 1)``.
        seed: seeds the order among equally rare groups and the filling order.
        config: how near-duplicates are found (default :class:`GroupConfig`).
        groups: precomputed ``(N,)`` group ids (skips :func:`find_groups`).
    """
    if not 0.0 < test_fraction < 1.0:
        raise InvalidParameterError(
            f"test_fraction: expected a value in (0, 1), got {test_fraction}"
        )
    n = len(dataset)
    presence = label_presence(dataset)
    gid = find_groups(dataset.images, config or GroupConfig()) if groups is None else groups
    uniq, inverse = np.unique(gid, return_inverse=True)
    n_groups = len(uniq)
    gsize = np.bincount(inverse, minlength=n_groups)
    gcount = np.zeros((n_groups, presence.shape[1]), dtype=np.int64)
    np.add.at(gcount, inverse, presence.astype(np.int64))
    n_label = presence.sum(0)
    need = np.where(n_label >= 2, np.maximum(1, np.rint(test_fraction * n_label)), 0).astype(int)
    target = max(1, round(test_fraction * n)) if n >= 2 else 0
    slack = max(1, round(0.05 * target))

    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(n_groups)
    rarity = np.array(
        [
            n_label[gcount[g] > 0].min() if (gcount[g] > 0).any() else math.inf
            for g in range(n_groups)
        ]
    )
    order = shuffled[np.argsort(rarity[shuffled], kind="stable")]

    side = np.zeros(n_groups, dtype=bool)
    test_count = np.zeros(presence.shape[1], dtype=np.int64)
    test_n = 0

    # no label's test share may grow far beyond test_fraction (rare labels ride along with
    # common ones in the same group, so "helps a deficit" alone would overfill them)
    cap = np.maximum(need, np.ceil(1.25 * test_fraction * n_label)).astype(np.int64)

    def within_cap(g: int) -> bool:
        return bool(np.all(test_count + gcount[g] <= np.maximum(cap, test_count)))

    def keeps_train(g: int) -> bool:
        has = gcount[g] > 0
        return bool(np.all(test_count[has] + gcount[g][has] <= n_label[has] - 1))

    def assign(g: int) -> None:
        nonlocal test_n
        side[g] = True
        test_count[:] += gcount[g]
        test_n += int(gsize[g])

    # 1. labels' test shares, rarest labels first
    for g in order.tolist():
        helps = np.any((gcount[g] > 0) & (test_count < need))
        if helps and keeps_train(g) and within_cap(g) and test_n + gsize[g] <= target + slack:
            assign(g)
    # 2. fill up to the target size
    for g in rng.permutation(n_groups).tolist():
        if test_n >= target:
            break
        if side[g] or test_n + gsize[g] > target + slack:
            continue
        if keeps_train(g) and within_cap(g):
            assign(g)
    # 3. repair labels missing from one side
    warnings: list[str] = []
    names = dataset.labels.names
    for k in np.flatnonzero(n_label >= 2).tolist():
        if test_count[k] > 0:
            continue
        holders = [g for g in range(n_groups) if gcount[g, k] > 0 and not side[g]]
        fixable = [g for g in holders if keeps_train(g)]
        if fixable:
            assign(min(fixable, key=lambda g: (gcount[g, k], gsize[g], g)))
        elif len(holders) == 1:
            warnings.append(
                f"label {names[k]!r}: all {n_label[k]} images are near-duplicates of one group; "
                "kept in train only"
            )
        else:
            warnings.append(f"label {names[k]!r}: could not be put in the test set")
    for k in np.flatnonzero(n_label == 1).tolist():
        warnings.append(f"label {names[k]!r}: only 1 image; kept in train only")
    for w in warnings:
        log.warning("split: %s", w)
    return SplitPlan(
        groups=gid.astype(np.int64),
        is_test=side[inverse],
        label_names=names,
        presence=presence,
        warnings=warnings,
    )


def split_dataset(
    dataset: Dataset,
    test_fraction: float = 0.2,
    seed: int = 0,
    config: GroupConfig | None = None,
) -> tuple[Dataset, Dataset]:
    """Split into ``(train, test)``, near-duplicates on one side, labels on both sides.

    Images keep their order; their ``split`` is set to ``train`` / ``test``. Both datasets
    share the input's label map.
    """
    plan = plan_split(dataset, test_fraction, seed, config)
    train = [
        im.with_split(Split.TRAIN)
        for im, t in zip(dataset.images, plan.is_test, strict=True)
        if not t
    ]
    test = [
        im.with_split(Split.TEST) for im, t in zip(dataset.images, plan.is_test, strict=True) if t
    ]
    return dataset.subset(train), dataset.subset(test)
