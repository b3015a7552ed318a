"""The pure core: boxes, annotations, datasets, detections and the model card (``model_card``:
the contract every layer reads) — stdlib + numpy only."""

from customlabels.core.boxes import (
    box_area,
    clip_xyxy,
    ltwh_to_xyxy,
    xywh_norm_to_xyxy,
    xyxy_to_ltwh,
    xyxy_to_ltwh_norm,
    xyxy_to_xywh_norm,
)
from customlabels.core.dataset import Dataset, ImageRecord, LabelMap
from customlabels.core.detections import Detections

__all__ = [
    "Dataset",
    "Detections",
    "ImageRecord",
    "LabelMap",
    "box_area",
    "clip_xyxy",
    "ltwh_to_xyxy",
    "xywh_norm_to_xyxy",
    "xyxy_to_ltwh",
    "xyxy_to_ltwh_norm",
    "xyxy_to_xywh_norm",
]
