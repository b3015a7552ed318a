"""Augmented views of the training images and their cached backbone features.

The backbone is frozen, so its features are computed ONCE per augmented view (flip, colour,
scale jitter with ``torchvision.transforms.v2`` on ``tv_tensors.BoundingBoxes``, ending in
``SanitizeBoundingBoxes``) and kept in memory as float16; training then runs only FPN + head
on crops of these cached maps, several times faster per step than running the backbone. A crop
of a large view is "training on crops of a high-resolution image while detecting on the whole
frame". Each view is made from a seed derived from ``(seed, image, view)``, so a resumed run
rebuilds the same cache.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from customlabels.core.dataset import ImageRecord
from customlabels.core.model_card import InputSpec
from customlabels.errors import DatasetError, ImageTooLargeError, InvalidImageError
from customlabels.inference.allocator import release_free_memory
from customlabels.inference.preprocess import Letterbox, preprocess
from customlabels.io.images import open_image_file
from customlabels.training.backbone import Backbone, BackboneSpec
from customlabels.training.config import AugmentConfig, InputConfig

__all__ = ["CachedView", "Crop", "build_views", "load_image", "sample_crops", "validation_features"]

log = logging.getLogger(__name__)

MIN_VIEWS = 32
TRIM_EVERY = 25  # views between handing the heap's free pages back (inference/allocator.py)


@dataclass
class CachedView:
    """One augmented view: backbone features + boxes in the view's input pixels.

    Attributes:
        image_index: index of the source image in the training list.
        feats: ``[C3, C4, C5]`` float16 ``(C, H/s, W/s)``.
        size_hw: padded input size ``(H, W)``, multiples of 32.
        boxes: float32 ``(M, 4)`` ``xyxy`` view pixels; labels: int64 ``(M,)``.
    """

    image_index: int
    feats: list[torch.Tensor]
    size_hw: tuple[int, int]
    boxes: torch.Tensor
    labels: torch.Tensor

    @property
    def nbytes(self) -> int:
        return sum(f.numel() * f.element_size() for f in self.feats)


@dataclass
class Crop:
    """A batch of crops: ``feats[l]`` ``(B, C, crop/s, crop/s)`` float32 and per-crop targets."""

    feats: list[torch.Tensor]
    targets: list[dict[str, torch.Tensor]]
    size_hw: tuple[int, int]


def load_image(record: ImageRecord, max_side: int | None = None) -> tuple[Image.Image, float]:
    """Open a record's file as RGB; returns the image and its scale w.r.t. ``record.size_wh``.

    JPEGs are decoded at a reduced size (``draft``) when ``max_side`` allows it: decoding a
    1920-pixel frame at half size is ~3× faster and loses nothing we keep.
    """
    if record.path is None:
        raise DatasetError(f"{record.ref}: no local file for this image")
    try:
        img = open_image_file(record.path, max_side=max_side)
    except (InvalidImageError, ImageTooLargeError) as exc:
        raise DatasetError(f"{record.path}: cannot decode image ({exc.message})") from None
    ref_w = record.size_wh[0] if record.size_wh else img.size[0]
    return img, img.size[0] / ref_w


def _normalize(x: torch.Tensor, spec: BackboneSpec) -> torch.Tensor:
    """``(3, H, W)`` pixels 0–255 -> the backbone's input scaling (its spec: the one place it
    is declared, also written to ``model.json`` for serving)."""
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    return (x.float() - mean) / std


def _augment_pipeline(aug: AugmentConfig, out_hw: tuple[int, int]) -> v2.Compose:
    ops: list[Callable[..., object]] = [v2.Resize(out_hw, antialias=True)]
    if aug.hflip:
        ops.append(v2.RandomHorizontalFlip(aug.hflip))
    if aug.vflip:
        ops.append(v2.RandomVerticalFlip(aug.vflip))
    if aug.color:
        c = aug.color
        ops.append(v2.ColorJitter(brightness=c, contrast=c, saturation=c, hue=min(0.5, c / 4)))
    ops.append(v2.SanitizeBoundingBoxes(min_size=2.0))
    return v2.Compose(ops)


def _pad_to(x: torch.Tensor, min_hw: tuple[int, int]) -> torch.Tensor:
    """Pad ``(3, h, w)`` right/bottom to multiples of 32 and at least ``min_hw``."""
    h, w = x.shape[-2:]
    th = max(min_hw[0], math.ceil(h / 32) * 32)
    tw = max(min_hw[1], math.ceil(w / 32) * 32)
    out = x.new_full((3, th, tw), 0.0)
    out[:, :h, :w] = x
    return out


@torch.no_grad()
def _features(
    backbone: Backbone, x: torch.Tensor, device: torch.device, levels: int = 3
) -> list[torch.Tensor]:
    x = x[None].to(device).contiguous(memory_format=torch.channels_last)
    return [f[0].to("cpu", torch.float16).contiguous() for f in backbone.features(x, levels)]


def make_view(
    rec: ImageRecord,
    index: int,
    view: int,
    backbone: Backbone,
    inp: InputConfig,
    aug: AugmentConfig,
    seed: int,
    device: torch.device,
    levels: int = 3,
) -> CachedView:
    """One view of one record (view 0: no augmentation, at the served scale).

    The served scale letterboxes the image into ``inp.width × inp.height``; view ``v > 0``
    multiplies it by a log-uniform factor in ``[scale_min, scale_max]`` and applies flips and
    colour jitter. The JPEG is decoded directly near the view's size (``draft``). A view larger
    than ``inp.view_window`` is cut to a window of that side (around a random box with
    probability ``aug.object_crops``) before the backbone runs: the backbone's cost follows the
    window, not the up-scaled frame. Only the first ``levels`` feature maps are kept (the rest
    are computed by fine-tuned blocks).
    """
    rng = np.random.default_rng([seed, index, view])
    lo, hi = math.log(aug.scale_min), math.log(aug.scale_max)
    factor = 1.0 if view == 0 else math.exp(rng.uniform(lo, hi))
    ref_w, ref_h = rec.size_wh or (0, 0)
    base = min(inp.width / ref_w, inp.height / ref_h) if ref_w and ref_h else 1.0
    want_side = math.ceil(max(ref_w, ref_h) * base * factor) if ref_w else None
    img, loaded_scale = load_image(rec, max_side=want_side)
    boxes = tv_tensors.BoundingBoxes(
        torch.as_tensor(rec.boxes * loaded_scale, dtype=torch.float32).reshape(-1, 4),
        format="XYXY",
        canvas_size=(img.size[1], img.size[0]),
    )
    labels = torch.as_tensor(rec.box_labels, dtype=torch.int64)
    scale = base * factor / loaded_scale
    out_hw = (max(1, round(img.size[1] * scale)), max(1, round(img.size[0] * scale)))
    if view == 0:
        pipeline = v2.Compose(
            [v2.Resize(out_hw, antialias=True), v2.SanitizeBoundingBoxes(min_size=2.0)]
        )
    else:
        pipeline = _augment_pipeline(aug, out_hw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**31)))
        # PIL in, PIL out: Pillow's resize is several times faster than an antialiased
        # tensor resize of a 1920-pixel frame.
        out_img, target = pipeline(img, {"boxes": boxes, "labels": labels})
    boxes = torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)
    labels = torch.as_tensor(target["labels"], dtype=torch.int64)
    w, h = out_img.size
    side = max(inp.view_window, inp.crop)
    if inp.view_window and max(w, h) > side:
        win = (min(h, side), min(w, side))
        ox, oy = _pick_origin(boxes, (h, w), win, aug.object_crops, 1, rng)
        out_img = out_img.crop((ox, oy, ox + win[1], oy + win[0]))
        boxes, labels = _cut(boxes, labels, (ox, oy), win, aug.min_visible)
    pixels = torch.from_numpy(np.asarray(out_img).copy()).permute(2, 0, 1)
    x = _pad_to(_normalize(pixels, backbone.spec), (inp.crop, inp.crop))
    return CachedView(
        image_index=index,
        feats=_features(backbone, x, device, levels),
        size_hw=(int(x.shape[-2]), int(x.shape[-1])),
        boxes=boxes.clone(),
        labels=labels.clone(),
    )


def build_views(
    records: Sequence[ImageRecord],
    backbone: Backbone,
    inp: InputConfig,
    aug: AugmentConfig,
    seed: int,
    views_per_image: int,
    device: torch.device,
    deadline: float | None = None,
    progress: Callable[[int], None] | None = None,
    levels: int = 3,
) -> list[CachedView]:
    """Up to ``views_per_image`` views of every record, computed pass by pass.

    Each pass visits the images in a seeded random order; with a ``deadline`` (a
    ``time.monotonic()`` value) the cache stops there (after at least ``MIN_VIEWS`` views), so a
    contended CPU yields fewer views (or, in a tiny budget, views of a random subset of the
    images) rather than an overrun budget. Without a deadline the result is deterministic.
    """
    views: list[CachedView] = []
    order = np.random.default_rng([seed, 3]).permutation(len(records))
    for v in range(views_per_image):
        for i in order.tolist():
            if deadline is not None and len(views) >= MIN_VIEWS and time.monotonic() > deadline:
                log.info("view cache: time share used after %d views", len(views))
                return views
            views.append(make_view(records[i], i, v, backbone, inp, aug, seed, device, levels))
            if len(views) % TRIM_EVERY == 0:
                release_free_memory()  # the temporaries' holes between the kept maps
            if len(views) % 100 == 0:
                log.info("view cache: %d views", len(views))
            if progress is not None:
                progress(len(views))
    return views


def validation_features(
    records: Sequence[ImageRecord],
    backbone: Backbone,
    spec: InputSpec,
    device: torch.device,
    levels: int = 3,
) -> list[tuple[list[torch.Tensor], Letterbox]]:
    """The first ``levels`` backbone maps of each image preprocessed exactly as served."""
    out = []
    for rec in records:
        img, _ = load_image(rec)  # full decode, exactly as the Predictor sees it
        tensor, box = preprocess(img, spec)
        out.append((_features(backbone, torch.from_numpy(tensor), device, levels), box))
    return out


def repeat_factors(records: Sequence[ImageRecord], num_labels: int, threshold: float) -> np.ndarray:
    """LVIS repeat-factor per image: ``max(1, sqrt(t / f_c))`` over the image's labels, where
    ``f_c`` is the fraction of images containing label ``c`` (images without labels: 1)."""
    n = max(1, len(records))
    freq = np.zeros(num_labels)
    for rec in records:
        for c in set(rec.box_labels.tolist()) | set(rec.image_labels):
            freq[c] += 1
    freq /= n
    out = np.ones(len(records))
    if threshold <= 0:
        return out
    for i, rec in enumerate(records):
        ids = set(rec.box_labels.tolist()) | set(rec.image_labels)
        if ids:
            out[i] = max(1.0, max(math.sqrt(threshold / max(freq[c], 1e-9)) for c in ids))
    return out


def _origin_around(
    centre: float, crop: int, max_index: int, unit: int, rng: np.random.Generator
) -> int:
    """A crop origin (in ``unit``-px steps) whose crop holds ``centre`` ≥ 16 px from its edges."""
    lo = math.ceil((centre - crop + 16) / unit)
    hi = max(lo, math.floor((centre - 16) / unit))
    return int(np.clip(rng.integers(lo, hi + 1), 0, max_index))


def _pick_origin(
    boxes: torch.Tensor,
    hw: tuple[int, int],
    crop_hw: tuple[int, int],
    object_crops: float,
    unit: int,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Top-left ``(x, y)`` (multiples of ``unit``) of a ``crop_hw`` crop of an ``hw`` image:
    with probability ``object_crops`` around the centre of a random box, else uniform."""
    (h, w), (ch, cw) = hw, crop_hw
    max_y, max_x = max(0, (h - ch) // unit), max(0, (w - cw) // unit)
    if len(boxes) and rng.random() < object_crops:
        b = boxes[int(rng.integers(len(boxes)))].numpy()
        x0 = _origin_around((b[0] + b[2]) / 2, cw, max_x, unit, rng)
        y0 = _origin_around((b[1] + b[3]) / 2, ch, max_y, unit, rng)
    else:
        x0, y0 = int(rng.integers(max_x + 1)), int(rng.integers(max_y + 1))
    return x0 * unit, y0 * unit


def _cut(
    boxes: torch.Tensor,
    labels: torch.Tensor,
    origin: tuple[int, int],
    crop_hw: tuple[int, int],
    min_visible: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes in a crop's pixels: clipped, kept when ≥ ``min_visible`` of their area and 2 px
    a side remain."""
    ox, oy = origin
    boxes = boxes - torch.tensor([ox, oy, ox, oy], dtype=torch.float32)
    clipped = torch.stack(
        [
            boxes[:, 0].clamp(0, crop_hw[1]),
            boxes[:, 1].clamp(0, crop_hw[0]),
            boxes[:, 2].clamp(0, crop_hw[1]),
            boxes[:, 3].clamp(0, crop_hw[0]),
        ],
        dim=1,
    )
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (cw.clamp(min=0) * ch.clamp(min=0) >= min_visible * area) & (cw >= 2) & (ch >= 2)
    return clipped[keep], labels[keep]


def sample_crops(
    views: Sequence[CachedView],
    weights: np.ndarray,
    batch: int,
    crop: int,
    aug: AugmentConfig,
    rng: np.random.Generator,
) -> Crop:
    """Draw ``batch`` crops of ``crop × crop`` input pixels (aligned to 32) from cached views.

    A view is drawn with probability ∝ ``weights``; with probability ``aug.object_crops`` the
    crop contains the centre of a random box of the view, else it is uniform. Boxes cut by the
    crop keep their visible part when at least ``aug.min_visible`` of their area remains.
    """
    p = weights / weights.sum()
    feats: list[list[torch.Tensor]] = [[] for _ in views[0].feats]
    targets = []
    for _ in range(batch):
        view = views[int(rng.choice(len(views), p=p))]
        h = view.size_hw[0]
        ox, oy = _pick_origin(view.boxes, view.size_hw, (crop, crop), aug.object_crops, 32, rng)
        for level, f in enumerate(view.feats):
            s = h // f.shape[-2]
            feats[level].append(f[:, oy // s : (oy + crop) // s, ox // s : (ox + crop) // s])
        boxes, labels = _cut(view.boxes, view.labels, (ox, oy), (crop, crop), aug.min_visible)
        targets.append({"boxes": boxes, "labels": labels})
    stacked = [
        torch.stack(level).float().contiguous(memory_format=torch.channels_last) for level in feats
    ]
    return Crop(stacked, targets, (crop, crop))


@torch.no_grad()
def pooled_views(
    records: Sequence[ImageRecord],
    backbone: Backbone,
    spec: InputSpec,
    aug: AugmentConfig,
    seed: int,
    views_per_image: int,
    device: torch.device,
    batch: int = 16,
    deadline: float | None = None,
    levels: int = 3,
) -> tuple[torch.Tensor, list[int]]:
    """Pooled backbone features ``(V, F)`` of augmented views (classifier) and their image index;
    with ``levels`` < 3, the map fine-tuned stages start from instead (float16).

    View 0 is the image preprocessed exactly as served; the others use ``RandomResizedCrop``
    (area ``scale_min``–1), flips and colour jitter from ``torchvision.transforms.v2``.
    """
    size = (spec.height, spec.width)
    ops: list[Callable[..., object]] = [
        v2.RandomResizedCrop(size, scale=(aug.scale_min, 1.0), antialias=True)
    ]
    if aug.hflip:
        ops.append(v2.RandomHorizontalFlip(aug.hflip))
    if aug.vflip:
        ops.append(v2.RandomVerticalFlip(aug.vflip))
    if aug.color:
        c = aug.color
        ops.append(v2.ColorJitter(brightness=c, contrast=c, saturation=c, hue=min(0.5, c / 4)))
    pipeline = v2.Compose(ops)
    tensors: list[torch.Tensor] = []
    index: list[int] = []
    out: list[torch.Tensor] = []

    def flush() -> None:
        if tensors:
            x = torch.stack(tensors).to(device).contiguous(memory_format=torch.channels_last)
            if levels < 3:  # the map fine-tuned stages start from (float16)
                out.append(backbone.features(x, levels)[-1].to("cpu", torch.float16))
            else:
                out.append(backbone.pooled(x).float().cpu())
            tensors.clear()

    images = [load_image(rec)[0] for rec in records]  # crops are small: decode once
    for v in range(views_per_image):
        if v > 0 and deadline is not None and time.monotonic() > deadline:
            break
        for i, img in enumerate(images):
            if v == 0:
                tensors.append(torch.from_numpy(preprocess(img, spec)[0]))
            else:
                rng = np.random.default_rng([seed, i, v])
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(rng.integers(2**31)))
                    aug_img = pipeline(img)  # PIL in, PIL out (fast resize)
                    pixels = torch.from_numpy(np.asarray(aug_img).copy()).permute(2, 0, 1)
                    tensors.append(_normalize(pixels, backbone.spec))
            index.append(i)
            if len(tensors) >= batch:
                flush()
    flush()
    width = backbone.spec.pooled_channels
    return (torch.cat(out) if out else torch.zeros(0, width)), index
