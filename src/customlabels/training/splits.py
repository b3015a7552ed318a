"""The three image sets of a run: training, validation (model selection, thresholds) and test.

The test set is the ``--test`` manifest or a group-aware share of the data; validation is carved
from the training part, never from the test set. Their refs and digests go into ``model.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from customlabels.core.dataset import Dataset, ImageRecord, LabelMap
from customlabels.datasets.advice import validation_fraction
from customlabels.datasets.split import split_dataset
from customlabels.errors import DatasetError
from customlabels.training.config import EvalConfig

__all__ = ["Splits", "make_splits", "relabel"]


@dataclass(frozen=True)
class Splits:
    """Records of each set; ``dataset`` is the usable training data (images with a file)."""

    dataset: Dataset
    train: list[ImageRecord]
    validation: list[ImageRecord]
    test: list[ImageRecord]

    def named(self) -> dict[str, list[ImageRecord]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def card_entry(self) -> dict[str, dict[str, object]]:
        """``model.json`` ``dataset``: a content digest and the image refs of each set."""
        named = self.named()
        return {
            "sha256": {name: _digest(recs) for name, recs in named.items()},
            "images": {name: [r.ref for r in recs] for name, recs in named.items()},
        }


def make_splits(
    dataset: Dataset,
    test: Dataset | None,
    validation: Dataset | None,
    config: EvalConfig,
    seed: int,
    grow_validation: bool = True,
) -> Splits:
    """Split ``dataset`` (the ``test`` and ``validation`` given explicitly are kept as they are;
    a test set's labels are renumbered to the training label map).

    ``grow_validation``: size the validation share by
    :func:`~customlabels.datasets.advice.validation_fraction` (larger with a separate test set,
    at least 30 images where the data allows); ``False`` when the user set
    ``eval.validation_fraction``, which is then taken as it is.

    Raises:
        DatasetError: no image with a local file, a test label unknown to training, or an empty
            training or validation set.
    """
    usable = [im for im in dataset.images if im.path is not None]
    if not usable:
        raise DatasetError("no usable training images (none with a local file)")
    dataset = dataset.subset(usable)
    test_given = test is not None
    if test is None:
        train_part, test = split_dataset(dataset, test_fraction=config.test_fraction, seed=seed)
    else:
        train_part = dataset
        test = relabel(test, dataset.labels.names)
    if validation is None:
        share = config.validation_fraction
        if grow_validation:
            share = validation_fraction(share, len(train_part.images), test_given)
        train_part, validation = split_dataset(train_part, test_fraction=share, seed=seed + 1)
    splits = Splits(dataset, train_part.images, validation.images, test.images)
    if not splits.train or not splits.validation:
        raise DatasetError(
            f"expected images for training and validation, got {len(splits.train)} and "
            f"{len(splits.validation)}"
        )
    return splits


def relabel(test: Dataset, names: list[str]) -> Dataset:
    """Express a test set's label ids in the training label map (manifests number labels in
    the order they first appear, which may differ between two files)."""
    if test.labels.names == names:
        return test
    unknown = [n for n in test.labels.names if n not in names]
    if unknown:
        raise DatasetError(
            f"test manifest: labels {unknown} do not occur in the training manifest "
            f"(expected a subset of {names})"
        )
    index = np.array([names.index(n) for n in test.labels.names], dtype=np.int64)
    images = [
        dataclasses.replace(
            im,
            box_labels=index[im.box_labels] if len(im.box_labels) else im.box_labels,
            image_labels=[int(index[i]) for i in im.image_labels],
        )
        for im in test.images
    ]
    return Dataset(labels=LabelMap(names), images=images)


def _digest(records: Sequence[ImageRecord]) -> str:
    h = hashlib.sha256()
    for rec in records:
        h.update(rec.ref.encode())
        h.update(np.round(rec.boxes, 3).tobytes())
        h.update(rec.box_labels.tobytes())
        h.update(json.dumps(sorted(rec.image_labels)).encode())
    return h.hexdigest()
