"""Group-aware split: near-duplicates on one side, every label on both sides, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Split
from customlabels.datasets.groups import GroupConfig, find_groups, name_stem
from customlabels.datasets.split import label_presence, plan_split, split_dataset
from customlabels.errors import InvalidParameterError
from customlabels.formats.groundtruth import load_ground_truth


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        (
            "Beehive---3-14-2022--2_47_11pm_mp4-148_jpg.rf.e5053ba9f68345c.jpg",
            "beehive---3-14-2022--2_47_11pm_mp4",
        ),
        ("1_mp4-10_jpg.rf.3830434f6ddfa64eaa0f5852fd8b6258.jpg", "1_mp4"),
        ("frame103_jpg.rf.21b6a38bcb5c5ee71c219b1d19127644.jpg", "frame"),
        ("s3://b/images/bee/frame246_jpg.rf.3635c2d3b57d1c91c09_0.jpg", "frame"),
        ("bee-queen-honeybee-97609790_jpg_5.jpg", "bee-queen-honeybee"),
        ("BloodImage_00338.jpg", "bloodimage"),
        ("12345.png", "12345"),
        ("IMG_6937_jpg.rf.abc.jpg", "img"),
    ],
)
def test_name_stem(name: str, stem: str) -> None:
    assert name_stem(name) == stem


def _records(names: list[str], labels: list[list[int]]) -> Dataset:
    return Dataset(
        labels=LabelMap(["a", "b", "c"]),
        images=[ImageRecord(ref=n, image_labels=lab) for n, lab in zip(names, labels, strict=True)],
    )


def test_frames_of_one_clip_are_grouped_and_common_stems_ignored() -> None:
    names = [f"clip_mp4-{i}_jpg.rf.{i:04x}.jpg" for i in range(3)]
    names += [f"BloodImage_{i:05d}.jpg" for i in range(6)]
    groups = find_groups(_records(names, [[0]] * 9).images, GroupConfig(use_pixels=False))
    assert len(set(groups[:3].tolist())) == 1
    assert len(set(groups[3:].tolist())) == 6  # 6 of 9 share a stem: a numbering, not a clip


def test_pixel_near_duplicates_are_grouped_whatever_their_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    other = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    paths = []
    for name, arr in [
        ("x.jpg", base),
        ("totally-else.jpg", np.clip(base.astype(int) + 3, 0, 255)),
        ("y.jpg", other),
    ]:
        Image.fromarray(arr.astype(np.uint8)).save(tmp_path / name, quality=90)
        paths.append(tmp_path / name)
    ds = Dataset(
        LabelMap(["a"]), [ImageRecord(ref=p.name, path=p, image_labels=[0]) for p in paths]
    )
    groups = find_groups(ds.images, GroupConfig(use_names=False))
    assert groups[0] == groups[1] != groups[2]


def _check_split(ds: Dataset, test_fraction: float, seed: int) -> None:
    plan = plan_split(ds, test_fraction, seed)
    train, test = split_dataset(ds, test_fraction, seed)
    assert len(train) + len(test) == len(ds)
    assert {im.ref for im in train}.isdisjoint(im.ref for im in test)
    assert all(im.split == Split.TRAIN for im in train) and all(
        im.split == Split.TEST for im in test
    )
    # near-duplicate groups never straddle the split
    for g in np.unique(plan.groups):
        assert len(set(plan.is_test[plan.groups == g].tolist())) == 1
    # every label with >= 2 images is on both sides, unless reported
    presence = label_presence(ds)
    for k, name in enumerate(ds.labels):
        if presence[:, k].sum() >= 2 and not any(repr(name) in w for w in plan.warnings):
            assert presence[plan.is_test, k].any() and presence[~plan.is_test, k].any(), name
    assert abs(len(test) / len(ds) - test_fraction) < 0.06


@pytest.mark.parametrize("fixture", ["bees_manifest", "bccd_manifest", "bee_crops_manifest"])
def test_real_sets(fixture: str, request: pytest.FixtureRequest) -> None:
    ds = load_ground_truth(request.getfixturevalue(fixture))
    _check_split(ds, 0.2, seed=0)


def test_bees_keep_clips_together_and_is_deterministic(bees_manifest: Path) -> None:
    ds = load_ground_truth(bees_manifest)
    plan = plan_split(ds, 0.2, 0)
    stems = np.array([name_stem(im.name) for im in ds])
    for stem in ("frame", "beehive---3-15-2022--10_41_13am_mp4"):
        assert (stems == stem).sum() > 10
        assert len(set(plan.is_test[stems == stem].tolist())) == 1
    assert not plan.warnings
    again = plan_split(ds, 0.2, 0)
    np.testing.assert_array_equal(plan.is_test, again.is_test)


def test_labels_with_one_group_or_one_image_are_reported() -> None:
    names = ["clip-1.jpg", "clip-2.jpg"] + [f"p{i}x.jpg" for i in range(8)]
    labels = [[1], [1]] + [[0]] * 7 + [[2]]
    plan = plan_split(_records(names, labels), 0.3, 0, GroupConfig(use_pixels=False))
    joined = " ".join(plan.warnings)
    assert "'b'" in joined and "one group" in joined
    assert "'c'" in joined and "only 1 image" in joined
    assert not plan.is_test[:2].any() and not plan.is_test[-1]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_fraction(fraction: float) -> None:
    with pytest.raises(InvalidParameterError, match="test_fraction"):
        plan_split(_records(["a.jpg"], [[0]]), fraction)
