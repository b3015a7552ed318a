"""A small labelled sample generated offline: coloured shapes on textured backgrounds.

For the demo and tests on a machine without ``../shared/datasets``. Each image is a noisy,
shaded background with 0–4 shapes (``circle`` red-ish, ``square`` blue-ish, ``triangle``
green-ish; colour and shape both tell the class, so a few training steps already learn
something). Images are JPEG; labels are a Ground Truth manifest (``output.manifest``) with refs
``s3://synthetic-sample/images/<name>.jpg``, which resolve beside the manifest. The same
``seed`` gives the same files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from customlabels.core.dataset import Task
from customlabels.errors import InvalidParameterError

__all__ = ["SHAPES", "SampleConfig", "generate_sample"]

SHAPES = ("circle", "square", "triangle")
_BASE_COLOURS = {"circle": (220, 50, 40), "square": (40, 70, 220), "triangle": (40, 180, 60)}
_BUCKET = "synthetic-sample"


@dataclass(frozen=True)
class SampleConfig:
    """Shape of the sample.

    Attributes:
        size_wh: image size in pixels (the service wants sides of at least 64).
        max_objects: objects per detection image (0..max_objects; about 1 in 10 has none).
        min_side, max_side: object size in pixels.
        task: detection (boxes) or classification (one centred shape per image).
    """

    size_wh: tuple[int, int] = (256, 192)
    max_objects: int = 4
    min_side: int = 24
    max_side: int = 72
    task: Task = Task.OBJECT_LOCALIZATION


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * rng.uniform(30, 80)
    base = rng.uniform(90, 180, size=3).astype(np.float32)
    noise = rng.normal(0, rng.uniform(6, 20), size=(h, w, 3)).astype(np.float32)
    stripes = 10 * np.sin(xx / rng.uniform(3, 12))[..., None]
    arr = base[None, None, :] + ramp[..., None] + noise + stripes
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _draw(
    draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], colour: tuple[int, ...]
) -> None:
    x1, y1, x2, y2 = box
    if shape == "circle":
        draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=colour)
    elif shape == "square":
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=colour)
    else:
        draw.polygon([((x1 + x2) / 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=colour)


def _colour(rng: np.random.Generator, shape: str) -> tuple[int, int, int]:
    jitter = rng.integers(-35, 36, size=3)
    r, g, b = (
        int(np.clip(c + j, 0, 255)) for c, j in zip(_BASE_COLOURS[shape], jitter, strict=True)
    )
    return (r, g, b)


def _place(
    rng: np.random.Generator, w: int, h: int, side: int, taken: list[tuple[int, int, int, int]]
) -> tuple[int, int, int, int] | None:
    for _ in range(20):  # a few tries for a free spot; objects do not overlap
        x1 = int(rng.integers(0, w - side + 1))
        y1 = int(rng.integers(0, h - side + 1))
        box = (x1, y1, x1 + side, y1 + side)
        if all(box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken):
            return box
    return None


def generate_sample(
    out_dir: Path | str,
    n_images: int = 60,
    seed: int = 0,
    config: SampleConfig | None = None,
) -> Path:
    """Write ``n_images`` JPEGs under ``out_dir/images`` and ``out_dir/output.manifest``.

    Returns:
        The manifest's path (load it with ``load_ground_truth``).
    """
    config = config or SampleConfig()
    w, h = config.size_wh
    if n_images < 1 or min(w, h) < 64 or config.max_side > min(w, h):
        raise InvalidParameterError(
            f"synthetic sample: expected n_images ≥ 1, sides ≥ 64 and objects that fit, got "
            f"n_images={n_images}, size_wh={config.size_wh}, max_side={config.max_side}"
        )
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_images):
        name = f"shapes_{i:04d}.jpg"
        img = _background(rng, w, h)
        draw = ImageDraw.Draw(img)
        line: dict[str, object] = {"source-ref": f"s3://{_BUCKET}/images/{name}"}
        if config.task == Task.IMAGE_LEVEL_LABELS:
            k = i % len(SHAPES)  # balanced classes
            side = int(rng.integers(config.min_side, config.max_side + 1))
            x1, y1 = (w - side) // 2, (h - side) // 2
            _draw(draw, SHAPES[k], (x1, y1, x1 + side, y1 + side), _colour(rng, SHAPES[k]))
            line["shape"] = k
            line["shape-metadata"] = {
                "class-name": SHAPES[k],
                "confidence": 1,
                "type": "groundtruth/image-classification",
                "human-annotated": "yes",
                "job-name": "labeling-job/synthetic",
            }
        else:
            n_objects = 0 if rng.random() < 0.1 else int(rng.integers(1, config.max_objects + 1))
            taken: list[tuple[int, int, int, int]] = []
            annotations = []
            for _ in range(n_objects):
                k = int(rng.integers(0, len(SHAPES)))
                side = int(rng.integers(config.min_side, config.max_side + 1))
                box = _place(rng, w, h, side, taken)
                if box is None:
                    continue
                taken.append(box)
                _draw(draw, SHAPES[k], box, _colour(rng, SHAPES[k]))
                annotations.append(
                    {"class_id": k, "left": box[0], "top": box[1], "width": side, "height": side}
                )
            line["shapes"] = {
                "image_size": [{"width": w, "height": h, "depth": 3}],
                "annotations": annotations,
            }
            line["shapes-metadata"] = {
                "objects": [{"confidence": 1} for _ in annotations],
                "class-map": {str(k): s for k, s in enumerate(SHAPES)},
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "job-name": "labeling-job/synthetic",
            }
        img.save(out / "images" / name, "JPEG", quality=90)
        lines.append(json.dumps(line))
    manifest = out / "output.manifest"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest
