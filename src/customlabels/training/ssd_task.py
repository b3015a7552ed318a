"""The SSD detector adapter (``model.head: ssd``): the COCO SSD's extra layers and box predictors
fine-tuned with new class predictors, on crops of cached backbone features.

Everything but the head is shared with the FCOS adapter (:class:`CachedDetectorTask`): the
same cached views and crops (``views.py``: views at the served scale with scale jitter, crops
around objects), the same fine-tuned trunk stages over cached maps (``model.finetune_stages``),
model selection, NMS choice on validation, calibration and export. The crops are what makes
small objects meet the SSD's anchors: the recipe serves (and so trains) at a scale where the
median object is about the size of the smallest anchors (``recipe.py``), and the crops keep a
step's cost that of a 320-pixel input whatever the served size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from customlabels.errors import ConfigError
from customlabels.inference.ssd import SsdDecodeParams, decode_ssd, ssd_anchors
from customlabels.training.backbone_ssd import SSDMobileNetV2
from customlabels.training.cached_detector import CachedDetectorTask
from customlabels.training.selection import DEFAULT_NMS_IOU
from customlabels.training.ssd import SSDCriterion, SSDDetector, SSDHead

__all__ = ["SSDDetectorTask"]


class SSDDetectorTask(CachedDetectorTask[SsdDecodeParams]):
    """The whole COCO SSD (``module``: ``head``, the SSD's extra layers and predictors, and
    ``tail``, the fine-tuned trunk stages) trained on crops of cached trunk features."""

    def _head_modules(self) -> dict[str, nn.Module]:
        if not isinstance(self.backbone, SSDMobileNetV2):
            raise ConfigError(
                f"model.head: ssd expected model.backbone: mobilenetv2-ssd-coco, "
                f"got {self.backbone.spec.name}"
            )
        self.ssd = self.backbone
        return {"head": SSDHead(self.ssd, len(self.labels), seed=self.config.seed)}

    def _setup_head(self) -> None:
        e = self.config.eval
        self.decode = SsdDecodeParams(
            score_threshold=e.score_threshold,
            topk_per_level=e.topk_per_level,
            nms_iou=DEFAULT_NMS_IOU if e.nms_iou is None else e.nms_iou,
            max_detections=e.max_detections,
        )
        self.criterion = SSDCriterion(self.decode, len(self.labels))
        self._anchors: dict[tuple[int, int], np.ndarray] = {}

    def _ssd_head(self) -> SSDHead:
        head = self.module["head"]
        assert isinstance(head, SSDHead)
        return head

    def param_groups(self) -> list[dict[str, Any]]:
        """The new class predictors at ``optim.lr``; the COCO-trained parts (extra layers, box
        predictors, fine-tuned trunk stages) at ``optim.lr × model.tail_lr_scale``, like any
        pretrained block here."""
        head = self._ssd_head()
        kept = [*head.extras.parameters(), *head.box_predictors.parameters()]
        kept += list(self.module["tail"].parameters())
        return [
            {"params": list(head.class_predictors.parameters())},
            {"params": kept, "lr_scale": self.config.model.tail_lr_scale},
        ]

    def _crop_losses(
        self,
        pyramid: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]],
        size_hw: tuple[int, int],
    ) -> dict[str, torch.Tensor]:
        c4, c5 = pyramid[1:]
        return self.criterion(self._ssd_head()(c4, c5), targets, size_hw)

    def _outputs(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        c4, c5 = pyramid[1:]
        out = self._ssd_head()(c4, c5)
        return [out["bbox_regression"], out["cls_logits"]]

    def _decode_one(
        self, outputs: list[np.ndarray], size_hw: tuple[int, int], params: SsdDecodeParams
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Anchors depend only on the size and the anchor settings (NMS choices share them).
        if size_hw not in self._anchors:
            self._anchors[size_hw] = ssd_anchors(size_hw, params)
        regression, cls_logits = outputs
        return decode_ssd(regression, cls_logits, size_hw, params, self._anchors[size_hw])

    def export_module(self) -> nn.Module:
        return SSDDetector(self.ssd, self._ssd_head())

    def head_card(self) -> dict[str, Any]:
        return {
            "type": "ssd",
            "outputs": ["bbox_regression", "cls_logits"],
            **self.decode.to_head(),
            "size_divisor": 32,
        }
