"""Drawing boxes, labels and confidences on images (Pillow), for reports and ``visualize``.

Boxes are ``xyxy`` pixels of the image drawn on; confidences are shown as the API shows them
(0–100).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from customlabels.core.detections import Detections
from customlabels.evaluation.outcomes import ImageOutcome, Kind

__all__ = [
    "KIND_COLORS",
    "draw_detections",
    "draw_outcome",
    "fit",
    "label_color",
    "side_by_side",
]

RGB = tuple[int, int, int]

#: True positives green, false positives red, misses amber (colour-blind-distinguishable
#: by brightness too; the report's legend names them).
KIND_COLORS: dict[Kind, RGB] = {
    Kind.TRUE_POSITIVE: (22, 163, 74),
    Kind.FALSE_POSITIVE: (220, 38, 38),
    Kind.FALSE_NEGATIVE: (245, 158, 11),
}
_KIND_TEXT = {Kind.TRUE_POSITIVE: "", Kind.FALSE_POSITIVE: "FP ", Kind.FALSE_NEGATIVE: "miss "}

_PALETTE: list[RGB] = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def label_color(label_id: int) -> RGB:
    """A stable colour per label id (matplotlib's tab10)."""
    return _PALETTE[label_id % len(_PALETTE)]


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _scale(image: Image.Image) -> tuple[int, int]:
    """Line width and font size for an image of this size."""
    side = max(image.size)
    return max(2, round(side / 350)), max(12, round(side / 45))


def fit(image: Image.Image, max_side: int, min_side: int = 0) -> tuple[Image.Image, float]:
    """Downscale so the longer side is at most ``max_side`` (or upscale a small image so it is
    at least ``min_side``); returns the image and the factor."""
    w, h = image.size
    factor = min(1.0, max_side / max(w, h))
    if max(w, h) < min_side:
        factor = min_side / max(w, h)
    if factor != 1.0:
        image = image.resize((max(1, round(w * factor)), max(1, round(h * factor))))
    return image, factor


def _tag(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, color: RGB, size: int):
    font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left + 6, bottom - top + 4
    x, y = xy[0], xy[1] - h if xy[1] - h >= 0 else xy[1]
    draw.rectangle([x, y, x + w, y + h], fill=color)
    draw.text((x + 3 - left, y + 2 - top), text, fill=(255, 255, 255), font=font)


def _banner(image: Image.Image, lines: Sequence[tuple[str, RGB]]) -> None:
    """Image-level labels (classifiers): coloured tags stacked in the top-left corner."""
    draw = ImageDraw.Draw(image)
    _, size = _scale(image)
    y = 4.0
    for text, color in lines:
        _tag(draw, (4, y + size + 6), text, color, size)
        y += size + 8


def draw_outcome(
    image: Image.Image, outcome: ImageOutcome, labels: list[str], max_side: int = 800
) -> Image.Image:
    """A copy of ``image`` (downscaled to ``max_side``) with TP, FP and misses drawn."""
    # small images (classification crops) are enlarged so the tags stay readable on them
    image, k = fit(image.convert("RGB"), max_side, min_side=360)
    image = image.copy()
    draw = ImageDraw.Draw(image)
    width, size = _scale(image)
    tags: list[tuple[str, RGB]] = []
    # misses first, so predictions drawn later stay on top
    order = sorted(outcome.items, key=lambda o: o.kind != Kind.FALSE_NEGATIVE)
    for o in order:
        color = KIND_COLORS[o.kind]
        text = _KIND_TEXT[o.kind] + labels[o.label]
        if o.score is not None:
            text += f" {o.score * 100:.1f}"
        if o.box is None:
            tags.append((text, color))
            continue
        x1, y1, x2, y2 = (v * k for v in o.box)
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        _tag(draw, (x1, y1), text, color, size)
    if tags:
        _banner(image, tags)
    return image


def draw_detections(
    image: Image.Image,
    detections: Detections,
    labels: list[str],
    title: str | None = None,
) -> Image.Image:
    """A copy of ``image`` with every detection drawn: a box (detectors) or a tag (classifiers)
    in the label's colour, with ``label confidence`` (0–100). Filter before calling."""
    image = image.convert("RGB").copy()
    draw = ImageDraw.Draw(image)
    width, size = _scale(image)
    kept = detections.sorted()
    tags: list[tuple[str, RGB]] = []
    for i in range(len(kept))[::-1]:  # lowest first, so the most confident is drawn on top
        c = int(kept.class_ids[i])
        text = f"{labels[c]} {kept.scores[i] * 100:.1f}"
        if kept.boxes is None:
            tags.insert(0, (text, label_color(c)))
            continue
        x1, y1, x2, y2 = (float(v) for v in kept.boxes[i])
        draw.rectangle([x1, y1, x2, y2], outline=label_color(c), width=width)
        _tag(draw, (x1, y1), text, label_color(c), size)
    if tags:
        _banner(image, tags)
    return image if title is None else _with_header(image, title)


def _with_header(image: Image.Image, title: str) -> Image.Image:
    """``image`` below a dark band carrying ``title`` (so the title never hides a box)."""
    _, size = _scale(image)
    band = size + 12
    canvas = Image.new("RGB", (image.width, image.height + band), (17, 24, 39))
    canvas.paste(image, (0, band))
    ImageDraw.Draw(canvas).text((6, 6), title, fill=(255, 255, 255), font=_font(size))
    return canvas


def side_by_side(images: Sequence[Image.Image], gap: int = 8) -> Image.Image:
    """Images next to each other on a white canvas, top-aligned."""
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    height = max(im.height for im in images)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for im in images:
        canvas.paste(im, (x, 0))
        x += im.width + gap
    return canvas
