"""Sliced inference: the grid, tile boxes mapped to the frame, the merge, and a real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from customlabels.core.model_card import InputSpec, ModelCard, TilingSpec
from customlabels.evaluation.matching import box_iou
from customlabels.inference.decode import FcosDecodeParams
from customlabels.inference.predictor import Predictor
from customlabels.inference.preprocess import Letterbox
from customlabels.inference.tiling import (
    Tile,
    cut_by_edge,
    merge_detections,
    tile_detections,
    tile_grid,
    tile_input_spec,
    tile_keep,
    tile_to_frame,
    tiling_applies,
)

SERVED = InputSpec(width=1280, height=736)
TWO_BY_TWO = TilingSpec((2, 2), 0.2, 2.0)


def test_grid_of_a_bee_frame() -> None:
    """1920×1080 in 2×2 tiles sharing 20 %: tiles of 1920/1.8 × 1080/1.8, steps of 80 % of
    that; shared edges are the inner ones only."""
    tiles = tile_grid((1920, 1080), TWO_BY_TWO)
    assert [(t.x0, t.y0, t.x1, t.y1) for t in tiles] == [
        (0, 0, 1067, 600),
        (853, 0, 1920, 600),
        (0, 480, 1067, 1080),
        (853, 480, 1920, 1080),
    ]
    assert [t.shared for t in tiles] == [
        (False, False, True, True),
        (True, False, False, True),
        (False, True, True, False),
        (True, True, False, False),
    ]
    # The frame is served at 2/3 (1280/1920); a tile at 2 × 2/3: 1067 × 4/3 = 1422.7 -> 1440.
    spec = tile_input_spec(SERVED, (1920, 1080), tiles, TWO_BY_TWO)
    assert (spec.width, spec.height, spec.resize, spec.mean) == (
        1440,
        800,
        "letterbox",
        SERVED.mean,
    )
    one = tile_grid((1920, 1080), TilingSpec((1, 1), 0.0, 2.0))
    assert [(t.x0, t.y0, t.x1, t.y1, t.shared) for t in one] == [(0, 0, 1920, 1080, (False,) * 4)]


@pytest.mark.parametrize(
    ("frame_wh", "spec", "expected"),
    [
        ((1920, 1080), SERVED, True),  # shrunk to fit: small objects shrink with it
        ((1280, 736), SERVED, False),  # seen at full resolution already
        ((640, 480), SERVED, False),
        ((1920, 1080), InputSpec(width=224, height=224, resize="stretch"), False),
    ],
)
def test_tiling_applies_to_frames_shrunk_to_fit(
    frame_wh: tuple[int, int], spec: InputSpec, expected: bool
) -> None:
    assert tiling_applies(frame_wh, spec) is expected


def test_tile_boxes_map_to_frame_pixels() -> None:
    """Input pixels / the tile's letterbox scale + the tile's origin, clipped to the tile."""
    tile = Tile(300, 200, 800, 600, (True, True, False, False))
    lb = Letterbox(scale_xy=(2.0, 2.0), content_wh=(1000, 800), original_wh=(500, 400))
    boxes = np.array([[100.0, 60.0, 140.0, 100.0], [-10.0, 700.0, 30.0, 900.0]])
    np.testing.assert_array_equal(
        tile_to_frame(boxes, lb, tile),
        [[350.0, 230.0, 370.0, 250.0], [300.0, 550.0, 315.0, 600.0]],
    )


def test_boxes_cut_by_a_shared_edge() -> None:
    tile = Tile(0, 0, 1067, 600, (False, False, True, True))  # top-left tile of a bee frame
    boxes = np.array(
        [
            [1050.0, 100.0, 1067.0, 120.0],  # reaches the shared right edge: cut
            [900.0, 585.0, 930.0, 598.0],  # within 3 px of the shared bottom edge: cut
            [900.0, 100.0, 930.0, 120.0],  # inside
            [0.0, 0.0, 20.0, 20.0],  # on the frame's own border: whole
        ]
    )
    assert cut_by_edge(boxes, tile, margin=3.0).tolist() == [True, True, False, False]
    big = np.array([[100.0, 100.0, 200.0, 130.0]])
    assert tile_keep(big, tile, 3.0, max_side=100.0).tolist() == [True]
    assert tile_keep(big, tile, 3.0, max_side=99.0).tolist() == [False]


def test_merge_keeps_the_whole_box_once() -> None:
    """A bee at x 1040–1070 of a bee frame: the top-left tile (x < 1067) sees it cut, the
    top-right one (x ≥ 853) whole, the whole frame loosely; and a bee at x 900–925, in both
    tiles' overlap, is seen whole twice. Merged: one box each, the best-scored whole one."""
    params = FcosDecodeParams(nms_iou=0.5)
    left, right = tile_grid((1920, 1080), TWO_BY_TWO)[:2]
    cut = np.array([[1040.0, 100.0, 1067.0, 124.0]])
    whole = np.array([[1040.0, 100.0, 1070.0, 124.0]])
    dup_a = np.array([[900.0, 300.0, 925.0, 322.0]])
    dup_b = np.array([[901.0, 300.0, 925.0, 323.0]])
    parts = []
    for tile, boxes, scores in (
        (left, np.vstack([cut, dup_a]), np.array([0.9, 0.6])),
        (right, np.vstack([whole, dup_b]), np.array([0.7, 0.8])),
    ):
        keep = tile_keep(boxes, tile, margin=3.0, max_side=96.0)
        parts.append((boxes[keep], scores[keep], np.zeros(int(keep.sum()), dtype=np.int64)))
    assert len(parts[0][0]) == 1  # the cut box is gone, its higher score with it
    full = (np.array([[1036.0, 96.0, 1074.0, 130.0]]), np.array([0.3]), np.array([0]))
    boxes, scores, _ = merge_detections([full, *parts], params)
    np.testing.assert_array_equal(boxes, np.vstack([dup_b, whole]))
    np.testing.assert_array_equal(scores, [0.8, 0.7])
    # A different label at the same place is another object, never merged.
    other = (whole, np.array([0.5]), np.array([1]))
    assert len(merge_detections([full, *parts, other], params)[0]) == 3


def _open(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


@pytest.fixture(scope="module")
def tiled_model(tiny_detector_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny real detector (served at 640×384) with tiling set in its card."""
    folder = tmp_path_factory.mktemp("tiled") / "bees-tiled"
    shutil.copytree(tiny_detector_dir, folder)
    card = ModelCard.load(folder)
    card.tiling = TWO_BY_TWO
    card.save(folder)
    return folder


def test_predictor_with_tiling_returns_frame_pixels(
    tiled_model: Path, tiny_detector_dir: Path, bees_manifest: Path
) -> None:
    image = next(
        im
        for im in (_open(p) for p in sorted((bees_manifest.parent / "images").glob("*.jpg")))
        if im.size == (1920, 1080)
    )
    plain = Predictor.load(tiny_detector_dir)
    tiled = Predictor.load(tiled_model)
    calls: list[tuple[int, ...]] = []
    run = tiled.raw
    tiled.raw = lambda x: calls.append(x.shape) or run(x)  # type: ignore[method-assign]
    dets = tiled.predict(image)
    # One run of the whole frame at the served input, one batch of the 4 tiles at 2 × its scale
    # (the tiny model serves 640×384: 1920×1080 at 1/3; a tile 1067×600 at 2/3: 736×416).
    assert calls == [(1, 3, 384, 640), (4, 3, 416, 736)]
    assert dets.boxes is not None and dets.raw_scores is not None
    assert np.all(dets.boxes >= 0) and np.all(dets.boxes[:, [0, 2]] <= 1920)
    assert np.all(dets.boxes[:, [1, 3]] <= 1080)
    assert np.all(np.diff(dets.raw_scores) <= 1e-12)
    # The tiles' boxes are in frame pixels: some lie where only the right or bottom tiles reach.
    params = FcosDecodeParams.from_head(tiled.card.head)
    b = tile_detections(run, image, tiled.card.input, params, TWO_BY_TWO)[0]
    assert len(b) and (b[:, 2].max() > 1067 or b[:, 3].max() > 600)
    # Merging only adds: each whole-frame box is kept or suppressed by a better box of its label.
    whole = plain.predict(image)
    assert whole.boxes is not None and whole.raw_scores is not None and len(whole)
    iou = box_iou(whole.boxes, dets.boxes)
    # (below the merged set's lowest score, a box may fall to the max_detections cap)
    for i in np.flatnonzero(whole.raw_scores > dets.raw_scores.min()):
        same = dets.class_ids == whole.class_ids[i]
        better = dets.raw_scores >= whole.raw_scores[i] - 1e-12
        kept_or_beaten = (iou[i] > 1 - 1e-9) | (iou[i] > params.nms_iou)
        assert np.any(same & better & kept_or_beaten)
