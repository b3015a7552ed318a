"""The canonical in-memory dataset every format converts into and out of.

A :class:`Dataset` is an ordered :class:`LabelMap` plus a list of :class:`ImageRecord`. An image
carries its reference (``s3://`` URI or path, as written by the user), the resolved local path when
there is one, its ``size_wh``, an optional split, and labels of two kinds:

- boxes: ``boxes`` (float64 ``(N, 4)``, ``xyxy`` pixels) with ``box_labels`` (int64 ``(N,)``,
  indices into the label map);
- image-level labels: ``image_labels`` (indices into the label map; several for multi-label).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.core.boxes import FloatArray, as_boxes

__all__ = ["Dataset", "ImageRecord", "LabelMap", "Split", "Task"]


class Task(enum.StrEnum):
    """What a dataset (or a model) is for, named as the service names its use cases."""

    OBJECT_LOCALIZATION = "OBJECT_LOCALIZATION"
    IMAGE_LEVEL_LABELS = "IMAGE_LEVEL_LABELS"


class Split(enum.StrEnum):
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


class LabelMap:
    """An ordered, duplicate-free list of label names; a label's id is its position."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names: list[str] = []
        self._ids: dict[str, int] = {}
        for name in names:
            self.add(name)

    def add(self, name: str) -> int:
        """Return the id of ``name``, appending it if it is new."""
        if name not in self._ids:
            self._ids[name] = len(self._names)
            self._names.append(name)
        return self._ids[name]

    def id_of(self, name: str) -> int:
        try:
            return self._ids[name]
        except KeyError:
            raise KeyError(f"unknown label {name!r}; expected one of {self._names}") from None

    def name_of(self, label_id: int) -> str:
        if not 0 <= label_id < len(self._names):
            raise KeyError(f"label id {label_id} out of range 0..{len(self._names) - 1}")
        return self._names[label_id]

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and self._names == other._names

    def __repr__(self) -> str:
        return f"LabelMap({self._names!r})"


def _empty_boxes() -> FloatArray:
    return np.zeros((0, 4), dtype=np.float64)


def _empty_ids() -> npt.NDArray[np.int64]:
    return np.zeros((0,), dtype=np.int64)


@dataclass(eq=False)
class ImageRecord:
    """One image and its labels.

    Attributes:
        ref: the reference as the source wrote it (``s3://bucket/key``, a relative path, ...).
        size_wh: ``(width, height)`` in pixels, as declared by the source or read from the file;
            ``None`` when unknown.
        path: the resolved local file, when the image is on disk.
        split: ``train``/``validation``/``test`` when the source says so.
        boxes: float64 ``(N, 4)`` ``xyxy`` pixel boxes.
        box_labels: int64 ``(N,)`` label ids of ``boxes``.
        image_labels: label ids that apply to the whole image.
        line: 1-based line (or record) number in the source, for error messages.
        extra: format-specific fields kept for a faithful round trip.
    """

    ref: str
    size_wh: tuple[int, int] | None = None
    path: Path | None = None
    split: Split | None = None
    boxes: FloatArray = field(default_factory=_empty_boxes)
    box_labels: npt.NDArray[np.int64] = field(default_factory=_empty_ids)
    image_labels: list[int] = field(default_factory=list)
    line: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = as_boxes(self.boxes)
        self.box_labels = np.asarray(self.box_labels, dtype=np.int64).reshape(-1)
        if len(self.boxes) != len(self.box_labels):
            raise ValueError(
                f"{self.ref}: expected one label per box, got {len(self.boxes)} boxes and "
                f"{len(self.box_labels)} labels"
            )

    @property
    def name(self) -> str:
        """The file name of the image (last part of its reference)."""
        return self.ref.rstrip("/").rsplit("/", 1)[-1]

    @property
    def has_labels(self) -> bool:
        return len(self.boxes) > 0 or len(self.image_labels) > 0

    def with_split(self, split: Split | None) -> ImageRecord:
        return replace(self, split=split)


@dataclass(eq=False)
class Dataset:
    """An ordered label map and the images labelled with it."""

    labels: LabelMap
    images: list[ImageRecord] = field(default_factory=list)

    @property
    def task(self) -> Task:
        """Detection if any image has boxes or the source was a box job, else classification."""
        if any(len(im.boxes) for im in self.images) or any(
            im.extra.get("task") == Task.OBJECT_LOCALIZATION for im in self.images
        ):
            return Task.OBJECT_LOCALIZATION
        return Task.IMAGE_LEVEL_LABELS

    @property
    def num_boxes(self) -> int:
        return sum(len(im.boxes) for im in self.images)

    def subset(self, images: Sequence[ImageRecord]) -> Dataset:
        return Dataset(labels=self.labels, images=list(images))

    def by_split(self, split: Split) -> Dataset:
        return self.subset([im for im in self.images if im.split == split])

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.images)
