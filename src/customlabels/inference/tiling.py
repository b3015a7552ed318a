"""Sliced inference for small objects (the SAHI approach), numpy + Pillow only.

A frame larger than the served input is letterboxed down to it, and small objects shrink with
it: on the bee frames (1920×1080 served at 1280×736) a 24-px bee is 16 px on the input, where
recall is 0.56. With the card's ``tiling`` (:class:`~customlabels.core.model_card.TilingSpec`)
the frame is also cut into ``grid`` overlapping tiles, each run at ``scale`` × the frame's served
magnification (scale 2: that bee is 32 px on a tile's input), in one batched run; the model's
input height and width are dynamic, so a tile's input size follows from the magnification
rather than from the card's ``input`` size.

Merging (:func:`merge_detections`), per tile then over the frame:

1. boxes decoded on a tile's input are mapped back to frame pixels (:func:`tile_to_frame`);
2. a tile box within :data:`EDGE_MARGIN_PX` of an edge the tile shares with a neighbour is
   dropped (:func:`cut_by_edge`): the object is cut there, and the neighbour, which overlaps
   by more than a small object's size, sees it whole (a large one is the whole frame's);
3. a tile box larger than :data:`TILE_MAX_SIDE` px on the whole frame's served input is
   dropped: tiles are for small objects; large ones are seen whole, at the trained scale, on
   the whole frame, while a tile may see only part of one (a bee's abdomen as a bee);
4. the whole frame's and the tiles' boxes are merged by class-wise greedy NMS at the card's
   NMS IoU (the one chosen on validation): the same object seen twice keeps its best score.

SAHI itself (``sahi`` on PyPI) merges with greedy NMM (the union of matched boxes, matched by
intersection over the smaller box) and leaves cut boxes to that merge; it wraps torch-based
models and pulls in OpenCV and shapely, so serving (never torch) does not take it as a
dependency. Greedy NMM's union box also grows past the object when a loose full-frame box and a
tight tile box are merged, which costs IoU on 20-px objects; NMS keeps the better-scored box.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from PIL import Image

from customlabels.core.model_card import InputSpec, TilingSpec
from customlabels.inference.decode import FcosDecodeParams, classwise_nms, decode_fcos
from customlabels.inference.preprocess import Letterbox, preprocess

__all__ = [
    "EDGE_MARGIN_PX",
    "TILE_MAX_SIDE",
    "Tile",
    "Triplet",
    "cut_by_edge",
    "merge_detections",
    "tile_detections",
    "tile_grid",
    "tile_input_spec",
    "tile_keep",
    "tile_to_frame",
    "tiling_applies",
]

FloatArray = npt.NDArray[np.float64]
#: ``(boxes (N, 4) xyxy frame pixels, raw scores (N,) 0–1, class ids (N,))``.
Triplet = tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]
#: A batch ``(N, 3, H, W)`` float32 -> the model's outputs, each ``(N, ...)`` (ONNX or torch).
RunBatch = Callable[[npt.NDArray[np.float32]], Sequence[npt.NDArray[np.floating]]]

#: A tile box this close to a shared edge, in pixels of the tile's input, is cut by it.
EDGE_MARGIN_PX = 4.0
#: Tile boxes whose longer side exceeds this on the whole frame's served input are dropped.
TILE_MAX_SIDE = 64.0


@dataclass(frozen=True)
class Tile:
    """A rectangle of the frame, integer pixels ``[x0, x1) × [y0, y1)``.

    ``shared``: which of its left, top, right, bottom edges lie inside the frame (shared with
    a neighbouring tile) rather than on the frame's border.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    shared: tuple[bool, bool, bool, bool]

    @property
    def size_wh(self) -> tuple[int, int]:
        return self.x1 - self.x0, self.y1 - self.y0


def served_scale(frame_wh: tuple[int, int], spec: InputSpec) -> float:
    """Input pixels per frame pixel when the whole frame is letterboxed to ``spec``."""
    w, h = frame_wh
    return min(spec.width / w, spec.height / h)


def tiling_applies(frame_wh: tuple[int, int], spec: InputSpec) -> bool:
    """Tiles are run only for a letterboxed frame shrunk to fit the served input: a frame that
    fits it whole is already seen at full resolution (or larger)."""
    return spec.resize == "letterbox" and served_scale(frame_wh, spec) < 1.0


def _spans(length: int, parts: int, overlap: float) -> list[tuple[int, int]]:
    """``parts`` spans covering ``[0, length)``, neighbours sharing ``overlap`` of a span."""
    side = length / (parts - (parts - 1) * overlap)
    step = side * (1 - overlap)
    spans = []
    for i in range(parts):
        start = math.floor(i * step)
        end = length if i == parts - 1 else min(length, math.ceil(i * step + side))
        spans.append((start, end))
    return spans


def tile_grid(frame_wh: tuple[int, int], tiling: TilingSpec) -> list[Tile]:
    """The tiles of a frame, row by row: ``columns × rows`` of them, all (within a pixel) the
    same size, the first at the frame's top-left corner and the last at its bottom-right."""
    cols, rows = tiling.grid
    xs = _spans(frame_wh[0], cols, tiling.overlap)
    ys = _spans(frame_wh[1], rows, tiling.overlap)
    return [
        Tile(x0, y0, x1, y1, (i > 0, j > 0, i < cols - 1, j < rows - 1))
        for j, (y0, y1) in enumerate(ys)
        for i, (x0, x1) in enumerate(xs)
    ]


def tile_input_spec(
    spec: InputSpec, frame_wh: tuple[int, int], tiles: Sequence[Tile], tiling: TilingSpec
) -> InputSpec:
    """The input every tile of this frame is letterboxed to: the largest tile at ``scale`` ×
    the frame's served magnification, rounded up to multiples of 32 (the model's stride)."""
    mag = served_scale(frame_wh, spec) * tiling.scale
    tw = max(t.size_wh[0] for t in tiles)
    th = max(t.size_wh[1] for t in tiles)
    return replace(
        spec,
        width=max(32, 32 * math.ceil(tw * mag / 32)),
        height=max(32, 32 * math.ceil(th * mag / 32)),
    )


def tile_to_frame(boxes: FloatArray, letterbox: Letterbox, tile: Tile) -> FloatArray:
    """``(N, 4)`` ``xyxy`` on a tile's input -> ``xyxy`` frame pixels (clipped to the tile)."""
    out = letterbox.to_original(boxes)
    return out + np.array([tile.x0, tile.y0, tile.x0, tile.y0], dtype=np.float64)


def cut_by_edge(boxes: FloatArray, tile: Tile, margin: float) -> npt.NDArray[np.bool_]:
    """Which ``(N, 4)`` frame-pixel boxes reach within ``margin`` frame pixels of one of the
    tile's shared edges (cut by it)."""
    left, top, right, bottom = tile.shared
    cut = np.zeros(len(boxes), dtype=bool)
    if left:
        cut |= boxes[:, 0] <= tile.x0 + margin
    if top:
        cut |= boxes[:, 1] <= tile.y0 + margin
    if right:
        cut |= boxes[:, 2] >= tile.x1 - margin
    if bottom:
        cut |= boxes[:, 3] >= tile.y1 - margin
    return cut


def tile_detections(
    run: RunBatch,
    image: Image.Image,
    spec: InputSpec,
    params: FcosDecodeParams,
    tiling: TilingSpec,
) -> Triplet:
    """Run every tile of ``image`` in one batch; returns the tiles' kept boxes in frame pixels
    with their raw scores and class ids (not yet merged across tiles: see
    :func:`merge_detections`). The frame must be one :func:`tiling_applies` to."""
    frame_wh = image.size
    tiles = tile_grid(frame_wh, tiling)
    tspec = tile_input_spec(spec, frame_wh, tiles, tiling)
    tensors, boxes_lb = [], []
    for t in tiles:
        tensor, lb = preprocess(image.crop((t.x0, t.y0, t.x1, t.y1)), tspec)
        tensors.append(tensor)
        boxes_lb.append(lb)
    cls_logits, regression, centerness = run(np.stack(tensors))[:3]
    max_side = TILE_MAX_SIDE / served_scale(frame_wh, spec)  # frame pixels
    parts: list[Triplet] = []
    for k, (tile, lb) in enumerate(zip(tiles, boxes_lb, strict=True)):
        b, s, c = decode_fcos(
            cls_logits[k], regression[k], centerness[k], (tspec.height, tspec.width), params
        )
        b = tile_to_frame(b, lb, tile)
        keep = tile_keep(b, tile, EDGE_MARGIN_PX / lb.scale_xy[0], max_side)
        parts.append((b[keep], s[keep], c[keep]))
    return _concat(parts)


def tile_keep(
    boxes: FloatArray, tile: Tile, margin: float, max_side: float
) -> npt.NDArray[np.bool_]:
    """Which of a tile's ``(N, 4)`` frame-pixel boxes to keep: not cut by a shared edge
    (``margin`` frame pixels) and no side longer than ``max_side`` frame pixels."""
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return ~cut_by_edge(boxes, tile, margin) & (sides <= max_side)


def merge_detections(parts: Sequence[Triplet], params: FcosDecodeParams) -> Triplet:
    """The whole frame's and the tiles' detections (frame pixels) as one set: class-wise NMS
    at ``params.nms_iou``, highest score first, at most ``params.max_detections``."""
    boxes, scores, labels = _concat(parts)
    keep = classwise_nms(boxes, scores, labels, params.nms_iou, params.max_detections)
    return boxes[keep], scores[keep], labels[keep]


def _concat(parts: Sequence[Triplet]) -> Triplet:
    if not parts:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)
    return (
        np.concatenate([np.asarray(p[0], np.float64).reshape(-1, 4) for p in parts]),
        np.concatenate([np.asarray(p[1], np.float64) for p in parts]),
        np.concatenate([np.asarray(p[2], np.int64) for p in parts]),
    )
