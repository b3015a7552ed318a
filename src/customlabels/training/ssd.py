"""The whole COCO SSD as a detector (``model.head: ssd``): its extra layers and box predictors
kept, new class predictors for the dataset's labels.

Reads top to bottom: the trainable head (:class:`SSDHead`: the SSD's four extra layers, its six
COCO box-encoding convolutions, six new class convolutions), the full model used for export
(:class:`SSDDetector`) and the loss (:class:`SSDCriterion`, torchvision's SSD matching and
hard-negative-mined loss).

The anchors and box coding are those of the numpy decoder (``inference/ssd.py``), the one place
they are defined; training turns them into tensors. Boxes are ``xyxy`` pixels of the network
input. Box encodings are ``(dx, dy, dw, dh)`` with weights (10, 10, 5, 5), torchvision's order:
the graph's ``(ty, tx, th, tw)`` channels are swapped once, in :class:`SSDHead`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD
from torchvision.ops import box_iou

from customlabels.inference.ssd import SsdDecodeParams, ssd_anchors
from customlabels.training.backbone_ssd import COCO_CLASSES, SSDMobileNetV2, TFConv

__all__ = ["SSDCriterion", "SSDDetector", "SSDHead"]

# (ty, tx, th, tw) -> (tx, ty, tw, th): the graph's box code in torchvision's order.
_TF_TO_TV = (1, 0, 3, 2)


def _new_class_predictor(coco: TFConv, num_classes: int, seed: int) -> TFConv:
    """A class predictor for ``num_classes`` labels + background, initialised from the COCO one:
    the background column is COCO's, each label starts as the mean of COCO's 90 object columns
    (a generic "object" score) plus a little noise to tell the labels apart."""
    w, b = coco.conv.weight.detach(), coco.conv.bias.detach()  # type: ignore[union-attr]
    anchors = w.shape[0] // COCO_CLASSES
    w = w.view(anchors, COCO_CLASSES, *w.shape[1:])
    b = b.view(anchors, COCO_CLASSES)
    g = torch.Generator().manual_seed(seed)
    obj_w = w[:, 1:].mean(1, keepdim=True).expand(-1, num_classes, -1, -1, -1)
    obj_b = b[:, 1:].mean(1, keepdim=True).expand(-1, num_classes)
    noise = torch.randn(obj_w.shape, generator=g) * w[:, 1:].std() * 0.1
    new_w = torch.cat([w[:, :1], obj_w + noise], 1).reshape(-1, *w.shape[2:])
    new_b = torch.cat([b[:, :1], obj_b], 1).reshape(-1)
    return TFConv(new_w.contiguous(), new_b.contiguous(), 1, 1, False)


class SSDHead(nn.Module):
    """The SSD over ``[C4, C5]``: extra layers -> six maps -> box encodings and class logits.

    Args:
        backbone: the COCO SSD (its extra layers and box predictors are copied, trainable).
        num_classes: number of labels (softmax over labels + background, column 0).
        seed: the new class predictors' initial noise.
    """

    def __init__(self, backbone: SSDMobileNetV2, num_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.extras = copy.deepcopy(backbone.extras)
        self.box_predictors = copy.deepcopy(backbone.box_encodings)
        self.class_predictors = nn.ModuleList(
            _new_class_predictor(c, num_classes, seed + k)  # type: ignore[arg-type]
            for k, c in enumerate(backbone.class_predictors)
        )
        for p in self.parameters():
            p.requires_grad_(True)
        self.register_buffer("order", torch.tensor(_TF_TO_TV), persistent=False)

    def forward(self, c4: torch.Tensor, c5: torch.Tensor) -> dict[str, torch.Tensor]:
        """``C4 (N, 576, H/16, W/16)``, ``C5 (N, 1280, H/32, W/32)`` -> ``bbox_regression
        (N, A, 4)`` ``(dx, dy, dw, dh)`` and ``cls_logits (N, A, K + 1)`` over all anchors."""
        maps = [c4, c5]
        for extra in self.extras:
            maps.append(extra(maps[-1]))
        boxes, logits = [], []
        for feat, box_conv, cls_conv in zip(
            maps, self.box_predictors, self.class_predictors, strict=True
        ):
            n = feat.shape[0]
            boxes.append(box_conv(feat).permute(0, 2, 3, 1).reshape(n, -1, 4))
            logits.append(cls_conv(feat).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes + 1))
        regression = torch.cat(boxes, 1).index_select(2, self.order)  # type: ignore[arg-type]
        return {"bbox_regression": regression, "cls_logits": torch.cat(logits, 1)}


class SSDDetector(nn.Module):
    """Backbone + SSD head as one module: what is exported to ONNX.

    ``forward(images)``: float32 ``(N, 3, H, W)`` normalized, ``H`` and ``W`` multiples of 32 ->
    ``(bbox_regression (N, A, 4), cls_logits (N, A, K + 1))``. The extra layers' TensorFlow
    padding is fixed at the exported size (``TFConv``): serve at that size (``model.json``
    ``input``), which the predictor always does.
    """

    def __init__(self, backbone: SSDMobileNetV2, head: SSDHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c4, c5 = self.backbone.features(images)[1:]
        out = self.head(c4, c5)
        return out["bbox_regression"], out["cls_logits"]


class _NoBackbone(nn.Module):
    out_channels = 1


class SSDCriterion:
    """SSD training loss, delegated to torchvision's ``SSD.compute_loss``: each ground-truth box
    is matched to its best anchor and to every anchor of IoU ≥ ``iou_thresh`` (``SSDMatcher``),
    smooth-L1 on the matched encodings, softmax cross-entropy with hard negatives (3 per
    positive); both summed and divided by the number of positives."""

    def __init__(self, params: SsdDecodeParams, num_classes: int, iou_thresh: float = 0.5) -> None:
        self.params = params
        # Only compute_loss, its box coder and matcher are used: no backbone, no transform.
        self._ssd = SSD(
            _NoBackbone(),
            DefaultBoxGenerator([[2]]),
            (300, 300),
            num_classes + 1,
            head=nn.Identity(),
            iou_thresh=iou_thresh,
        )
        self._anchors: dict[tuple[int, int], torch.Tensor] = {}

    def anchors(self, size_hw: tuple[int, int], device: torch.device) -> torch.Tensor:
        """``(A, 4)`` ``xyxy`` anchors of an input of ``size_hw`` (cached per size)."""
        if size_hw not in self._anchors:
            a = ssd_anchors(size_hw, self.params).astype(np.float32)
            self._anchors[size_hw] = torch.from_numpy(a)
        return self._anchors[size_hw].to(device)

    def __call__(
        self,
        outputs: dict[str, torch.Tensor],
        targets: list[dict[str, torch.Tensor]],
        size_hw: tuple[int, int],
    ) -> dict[str, torch.Tensor]:
        """Losses (``bbox_regression``, ``classification``) of one batch.

        ``targets``: per image ``{"boxes": (M, 4) float xyxy input pixels, "labels": (M,) int64
        label index}`` (0-based; shifted here past the background column).
        """
        anchors = self.anchors(size_hw, outputs["cls_logits"].device)
        matched, shifted = [], []
        for t in targets:
            if t["boxes"].numel() == 0:
                matched.append(torch.full((len(anchors),), -1, dtype=torch.int64))
            else:
                matched.append(self._ssd.proposal_matcher(box_iou(t["boxes"], anchors)))
            shifted.append({"boxes": t["boxes"], "labels": t["labels"] + 1})
        matched = [m.to(anchors.device) for m in matched]
        return self._ssd.compute_loss(shifted, outputs, [anchors] * len(targets), matched)
