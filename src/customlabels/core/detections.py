"""Detections: what a model predicts for one image.

Confidence is in 0–1 inside the package; the API layer turns it into the service's 0–100.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from customlabels.core.boxes import FloatArray, as_boxes

__all__ = ["Detections"]


def _empty_boxes() -> FloatArray:
    return np.zeros((0, 4), dtype=np.float64)


@dataclass(eq=False)
class Detections:
    """Predictions for one image.

    Attributes:
        boxes: float64 ``(N, 4)`` ``xyxy`` pixels of the original image; for a classifier, an
            empty ``(0, 4)`` array is not used: classifier detections have ``boxes=None``.
        scores: float64 ``(N,)`` confidences in 0–1.
        class_ids: int64 ``(N,)`` label ids.
        raw_scores: float64 ``(N,)`` the model's raw scores (0–1) before calibration, when
            ``scores`` are calibrated (``None``: ``scores`` are the raw ones).
    """

    scores: npt.NDArray[np.float64]
    class_ids: npt.NDArray[np.int64]
    boxes: FloatArray | None = field(default_factory=_empty_boxes)
    raw_scores: npt.NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if self.boxes is not None:
            self.boxes = as_boxes(self.boxes)
            if len(self.boxes) != len(self.scores):
                raise ValueError(
                    f"expected one score per box, got {len(self.boxes)} boxes and "
                    f"{len(self.scores)} scores"
                )
        if self.raw_scores is not None:
            self.raw_scores = np.asarray(self.raw_scores, dtype=np.float64).reshape(-1)
            if len(self.raw_scores) != len(self.scores):
                raise ValueError(
                    f"expected one raw score per score, got {len(self.raw_scores)} and "
                    f"{len(self.scores)}"
                )
        if len(self.class_ids) != len(self.scores):
            raise ValueError(
                f"expected one class id per score, got {len(self.class_ids)} and {len(self.scores)}"
            )

    @classmethod
    def empty(cls, with_boxes: bool = True) -> Detections:
        return cls(
            scores=np.zeros(0),
            class_ids=np.zeros(0, dtype=np.int64),
            boxes=_empty_boxes() if with_boxes else None,
        )

    def __len__(self) -> int:
        return len(self.scores)

    def sorted(self) -> Detections:
        """Highest confidence first (stable, so ties keep their order)."""
        order = np.argsort(-self.scores, kind="stable")
        return self[order]

    def __getitem__(
        self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_] | slice
    ) -> Detections:
        return Detections(
            scores=self.scores[index],
            class_ids=self.class_ids[index],
            boxes=None if self.boxes is None else self.boxes[index],
            raw_scores=None if self.raw_scores is None else self.raw_scores[index],
        )

    def raw(self) -> Detections:
        """The same detections with their raw (uncalibrated) scores as ``scores``."""
        if self.raw_scores is None:
            return self
        return Detections(scores=self.raw_scores, class_ids=self.class_ids, boxes=self.boxes)
