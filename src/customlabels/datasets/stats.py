"""What a dataset holds: labels, images without labels, image sizes and box sizes.

Box sizes are given relative to their image (``rel_side = sqrt(box_area / image_area)``), the
figure a trainer needs to choose its input resolution: a box whose relative side is ``r`` is
``r × input_side`` pixels across at the model's input.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.core.dataset import Dataset, Task

__all__ = ["REL_SIDE_BINS", "DatasetStats", "dataset_stats"]

# Histogram edges for relative box sides: 0–1 %, 1–2 %, 2–4 %, ..., 64–100 % of the image side.
REL_SIDE_BINS = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0)
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _quantiles(values: npt.NDArray[np.float64], digits: int = 4) -> dict[str, float]:
    if not len(values):
        return {}
    return {
        f"p{int(q * 100)}": round(float(v), digits)
        for q, v in zip(_QUANTILES, np.quantile(values, _QUANTILES), strict=True)
    } | {"min": round(float(values.min()), digits), "max": round(float(values.max()), digits)}


@dataclass
class DatasetStats:
    """Counts and size distributions of a dataset (see :func:`dataset_stats`).

    Attributes:
        task: detection or classification.
        images: number of images; ``images_without_labels`` of them carry no box/label.
        boxes: number of boxes.
        labels: per label ``{"images": ..., "boxes": ...}``.
        image_sizes: the most common ``"WxH"`` sizes with their counts.
        image_width, image_height: quantiles in pixels.
        unknown_sizes: images whose size is neither declared nor readable.
        boxes_per_image: quantiles over images with boxes.
        box_rel_side: quantiles of ``sqrt(box_area / image_area)`` (0–1).
        box_rel_side_histogram: ``{"lo-hi": count}`` over :data:`REL_SIDE_BINS` (percent).
        box_min_side_px: quantiles of each box's shorter side in pixels.
    """

    task: Task
    images: int
    images_without_labels: int
    boxes: int
    labels: dict[str, dict[str, int]]
    image_sizes: dict[str, int]
    image_width: dict[str, float]
    image_height: dict[str, float]
    unknown_sizes: int
    boxes_per_image: dict[str, float] = field(default_factory=dict)
    box_rel_side: dict[str, float] = field(default_factory=dict)
    box_rel_side_histogram: dict[str, int] = field(default_factory=dict)
    box_min_side_px: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["task"] = self.task.value
        return out


def dataset_stats(dataset: Dataset, read_sizes: bool = True, top_sizes: int = 10) -> DatasetStats:
    """Describe ``dataset``.

    Args:
        dataset: any dataset; boxes float ``xyxy`` pixels.
        read_sizes: read the header of images whose size is not declared (classification
            manifests declare none); no pixel is decoded.
        top_sizes: how many distinct image sizes to list.
    """
    from customlabels.datasets.validate import label_counts

    sizes: list[tuple[int, int] | None] = []
    for im in dataset.images:
        size = im.size_wh
        if size is None and read_sizes and im.path is not None:
            size = _header_size(im.path)
        sizes.append(size)
    known = np.array([s for s in sizes if s is not None], dtype=np.float64).reshape(-1, 2)
    size_counts = Counter(f"{w}x{h}" for w, h in (s for s in sizes if s is not None))

    rel: list[float] = []
    min_px: list[float] = []
    per_image: list[int] = []
    for im, size in zip(dataset.images, sizes, strict=True):
        if not len(im.boxes):
            continue
        per_image.append(len(im.boxes))
        wh = im.boxes[:, 2:] - im.boxes[:, :2]
        min_px.extend(wh.min(1).tolist())
        if size is not None:
            rel.extend(np.sqrt(wh[:, 0] * wh[:, 1] / (size[0] * size[1])).tolist())
    rel_arr = np.asarray(rel, dtype=np.float64)
    hist, _ = np.histogram(np.clip(rel_arr, 0, 1), bins=REL_SIDE_BINS)
    edges = [f"{lo * 100:g}-{hi * 100:g}%" for lo, hi in itertools.pairwise(REL_SIDE_BINS)]
    return DatasetStats(
        task=dataset.task,
        images=len(dataset),
        images_without_labels=sum(1 for im in dataset.images if not im.has_labels),
        boxes=dataset.num_boxes,
        labels=label_counts(dataset),
        image_sizes=dict(size_counts.most_common(top_sizes)),
        image_width=_quantiles(known[:, 0], 1),
        image_height=_quantiles(known[:, 1], 1),
        unknown_sizes=sum(1 for s in sizes if s is None),
        boxes_per_image=_quantiles(np.asarray(per_image, dtype=np.float64), 1),
        box_rel_side=_quantiles(rel_arr),
        box_rel_side_histogram=dict(zip(edges, hist.tolist(), strict=True)) if len(rel_arr) else {},
        box_min_side_px=_quantiles(np.asarray(min_px, dtype=np.float64), 1),
    )


def _header_size(path: Any) -> tuple[int, int] | None:
    from customlabels.datasets.image_checks import check_image_file

    return check_image_file(path).size_wh
