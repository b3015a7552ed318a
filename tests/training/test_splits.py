"""The run's image sets: test labels renumbered by name, validation never from the test set."""

from __future__ import annotations

from pathlib import Path

import pytest

from customlabels.core.dataset import Dataset, ImageRecord, LabelMap
from customlabels.errors import DatasetError
from customlabels.training.config import EvalConfig
from customlabels.training.splits import make_splits, relabel


def test_test_set_labels_are_mapped_by_name() -> None:
    test = Dataset(
        LabelMap(["queen", "bee"]),
        [ImageRecord(ref="t.jpg", boxes=[[0, 0, 4, 4], [1, 1, 5, 5]], box_labels=[0, 1])],
    )
    mapped = relabel(test, ["bee", "pollenbee", "queen"])
    assert mapped.labels.names == ["bee", "pollenbee", "queen"]
    assert mapped.images[0].box_labels.tolist() == [2, 0]
    with pytest.raises(DatasetError, match="drone"):
        relabel(Dataset(LabelMap(["drone"]), []), ["bee"])


def test_validation_is_carved_from_training_never_from_test(bees_manifest: Path) -> None:
    from customlabels.formats.groundtruth import load_ground_truth

    dataset = load_ground_truth(bees_manifest)
    dataset = dataset.subset(dataset.images[:40])
    splits = make_splits(dataset, None, None, EvalConfig(test_fraction=0.25), seed=0)
    refs = {name: {r.ref for r in recs} for name, recs in splits.named().items()}
    assert refs["train"] and refs["validation"] and refs["test"]
    assert not refs["train"] & refs["test"] and not refs["validation"] & refs["test"]
    assert not refs["train"] & refs["validation"]
    assert set().union(*refs.values()) == {im.ref for im in dataset.images}
    entry = splits.card_entry()
    assert entry["images"] == {name: [r.ref for r in recs] for name, recs in splits.named().items()}
    assert set(entry["sha256"]) == {"train", "validation", "test"}


def test_explicit_sets_are_kept_and_images_without_a_file_refused(tmp_path: Path) -> None:
    def records(prefix: str, n: int) -> list[ImageRecord]:
        refs = [f"{prefix}{i}.jpg" for i in range(n)]
        return [ImageRecord(ref=r, path=tmp_path / r, image_labels=[0]) for r in refs]

    labels = LabelMap(["bee"])
    train, val, test = (Dataset(labels, records(p, n)) for p, n in (("t", 5), ("v", 2), ("x", 3)))
    splits = make_splits(train, test, val, EvalConfig(), seed=0)
    assert [r.ref for r in splits.validation] == ["v0.jpg", "v1.jpg"]
    assert [r.ref for r in splits.test] == ["x0.jpg", "x1.jpg", "x2.jpg"]
    assert len(splits.train) == 5
    no_files = Dataset(labels, [ImageRecord(ref="a.jpg", image_labels=[0])])
    with pytest.raises(DatasetError, match="no usable training images"):
        make_splits(no_files, test, val, EvalConfig(), seed=0)
    with pytest.raises(DatasetError, match="expected images for training and validation"):
        make_splits(train, test, Dataset(labels, []), EvalConfig(), seed=0)
