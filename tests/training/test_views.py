"""Crop sampling from cached views and repeat-factor sampling (no backbone needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from customlabels.core.dataset import ImageRecord
from customlabels.training.config import AugmentConfig
from customlabels.training.views import CachedView, repeat_factors, sample_crops


def _view(h: int, w: int, boxes: list[list[float]]) -> CachedView:
    feats = []
    for s, c in ((8, 4), (16, 5), (32, 6)):
        # Each feature value encodes its own (row, col) so crops can be checked for alignment.
        rows = torch.arange(h // s).view(-1, 1).expand(h // s, w // s)
        cols = torch.arange(w // s).view(1, -1).expand(h // s, w // s)
        feats.append(torch.stack([rows * 1000 + cols] * c).to(torch.float16))
    return CachedView(
        0,
        feats,
        (h, w),
        torch.tensor(boxes).reshape(-1, 4),
        torch.zeros(len(boxes), dtype=torch.int64),
    )


@pytest.mark.parametrize("object_crops", [0.0, 1.0])
def test_crops_are_aligned_and_boxes_inside(object_crops: float) -> None:
    view = _view(544, 960, [[500.0, 300.0, 540.0, 330.0], [0.0, 0.0, 20.0, 20.0]])
    aug = AugmentConfig(object_crops=object_crops, min_visible=0.4)
    crop = sample_crops([view], np.ones(1), 16, 320, aug, np.random.default_rng(0))
    assert [f.shape[-1] for f in crop.feats] == [40, 20, 10]
    for b in range(16):
        # top-left of each level is the same input pixel (crop origin on the 32-px grid)
        y8, x8 = divmod(int(crop.feats[0][b, 0, 0, 0]), 1000)
        y32, x32 = divmod(int(crop.feats[2][b, 0, 0, 0]), 1000)
        assert (y8 * 8, x8 * 8) == (y32 * 32, x32 * 32)
        boxes = crop.targets[b]["boxes"]
        assert torch.all(boxes >= 0) and torch.all(boxes <= 320)
    if object_crops == 1.0:
        assert all(len(t["boxes"]) >= 1 for t in crop.targets)


def test_cut_boxes_below_min_visible_are_dropped() -> None:
    view = _view(320, 352, [[300.0, 10.0, 350.0, 40.0]])  # only 20 of 50 px inside x < 320
    crops = [
        sample_crops(
            [view],
            np.ones(1),
            1,
            320,
            AugmentConfig(object_crops=0.0, min_visible=0.5),
            np.random.default_rng(i),
        )
        for i in range(6)
    ]
    origins = {int(c.feats[0][0, 0, 0, 0]) % 1000 for c in crops}
    assert origins == {0, 4}  # x origin 0 or 32 px
    for c in crops:
        x0 = (int(c.feats[0][0, 0, 0, 0]) % 1000) * 8
        assert len(c.targets[0]["boxes"]) == (1 if x0 == 32 else 0)


def test_repeat_factors_favour_rare_labels() -> None:
    common = [ImageRecord(ref=f"c{i}", boxes=[[0, 0, 5, 5]], box_labels=[0]) for i in range(9)]
    rare = [ImageRecord(ref="r", boxes=[[0, 0, 5, 5]], box_labels=[1])]
    empty = [ImageRecord(ref="e")]
    rf = repeat_factors(common + rare + empty, 2, threshold=0.3)
    assert rf[0] == 1.0 and rf[-1] == 1.0
    assert rf[9] == pytest.approx(np.sqrt(0.3 / (1 / 11)))
    assert np.all(repeat_factors(common + rare, 2, threshold=0.0) == 1.0)


def test_large_views_are_cut_to_a_window_around_boxes(tiny_detector_data) -> None:  # type: ignore[no-untyped-def]
    """A 1920×1080 frame served at 1280×736 and cut to a 512-px window: the backbone sees the
    window only, and every kept box lies inside it with its label."""
    from customlabels.training.backbone import create_backbone
    from customlabels.training.config import InputConfig
    from customlabels.training.views import make_view

    train = tiny_detector_data[0]
    rec = max(train, key=lambda r: (r.size_wh or (0, 0))[0] * len(r.boxes))
    backbone = create_backbone("efficientnet-lite0")
    inp = InputConfig(width=1280, height=736, crop=320, view_window=512)
    aug = AugmentConfig(object_crops=1.0, scale_min=1.0, scale_max=1.0)
    whole = make_view(
        rec,
        0,
        0,
        backbone,
        InputConfig(width=1280, height=736, crop=320, view_window=0),
        aug,
        0,
        torch.device("cpu"),
        1,
    )
    view = make_view(rec, 0, 0, backbone, inp, aug, 0, torch.device("cpu"), 1)
    assert whole.size_hw == (736, 1280) and view.size_hw == (512, 512)
    assert len(view.feats) == 1 and view.feats[0].shape[-2:] == (64, 64)
    assert 0 < len(view.boxes) <= len(whole.boxes)
    assert torch.all(view.boxes >= 0) and torch.all(view.boxes <= 512)
    # Boxes the window did not cut are the whole view's boxes moved by one common offset.
    inside = view.boxes[(view.boxes > 0).all(1) & (view.boxes < 512).all(1)]
    assert len(inside)
    offsets = {
        tuple(torch.round(w[:2] - inside[0, :2]).tolist())
        for w in whole.boxes
        if torch.allclose(w[2:] - w[:2], inside[0, 2:] - inside[0, :2], atol=1e-3)
    }
    assert any(
        all(
            any(torch.allclose(b + torch.tensor([*o, *o]), w, atol=0.5) for w in whole.boxes)
            for b in inside
        )
        for o in offsets
    )
    assert set(view.labels.tolist()) <= set(whole.labels.tolist())
