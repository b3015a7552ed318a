"""The detector: frozen backbone -> torchvision FPN -> narrow FCOS head (anchor-free).

Reads top to bottom: the trainable neck+head (:class:`FCOSNeckHead`), the full model used for
export (:class:`FCOSDetector`) and the loss (:class:`FCOSCriterion`, torchvision's FCOS matching,
sigmoid focal loss, GIoU loss and centerness BCE).

Boxes are ``xyxy`` pixels of the network input everywhere here. Per-location outputs are
concatenated over the pyramid levels, level by level, row-major inside a level: location ``i``
of a level of stride ``s`` and width ``w`` sits at pixel ``((i % w) * s, (i // w) * s)``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import FeaturePyramidNetwork

from customlabels.training.backbone import Backbone

__all__ = ["FCOSCriterion", "FCOSDetector", "FCOSNeckHead"]


class FCOSNeckHead(nn.Module):
    """FPN over ``[C3, C4, C5]`` and a shared FCOS head over ``[P3, P4, P5]``.

    Args:
        in_channels: channels of C3, C4, C5.
        num_classes: number of labels (sigmoid per label; no background column).
        channels: FPN and head width.
        head_convs: 3×3 conv + GroupNorm + ReLU layers in each head branch.
    """

    def __init__(
        self,
        in_channels: tuple[int, ...],
        num_classes: int,
        channels: int = 64,
        head_convs: int = 2,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.fpn = FeaturePyramidNetwork(list(in_channels), channels)
        self.head = FCOSHead(channels, num_anchors=1, num_classes=num_classes, num_convs=head_convs)

    def forward(self, feats: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """``feats``: ``[C3, C4, C5]`` -> ``cls_logits (N, L, K)``, ``bbox_regression (N, L, 4)``
        (ltrb distances in units of the level's stride, ≥ 0), ``bbox_ctrness (N, L, 1)`` logits;
        ``L`` = locations of all levels."""
        pyramid = self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))
        return self.head(list(pyramid.values()))


class FCOSDetector(nn.Module):
    """Backbone + neck/head as one module: what is exported to ONNX.

    ``forward(images)``: ``images`` float32 ``(N, 3, H, W)`` normalized, ``H`` and ``W``
    multiples of 32 -> ``(cls_logits (N, L, K), bbox_regression (N, L, 4), centerness (N, L, 1))``.
    """

    def __init__(self, backbone: Backbone, neck_head: FCOSNeckHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck_head = neck_head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.neck_head(self.backbone.features(images))
        return out["cls_logits"], out["bbox_regression"], out["bbox_ctrness"]


class _NoBackbone(nn.Module):
    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels


class FCOSCriterion:
    """FCOS training loss, delegated to torchvision's ``FCOS.compute_loss``.

    Anchor "sizes" equal the strides (8, 16, 32), so a level handles boxes whose largest
    ltrb distance lies in ``(4·s, 8·s)`` (open at the first and last level), and positives are
    sampled within ``center_sampling_radius · s`` of a box centre.
    """

    def __init__(
        self, neck_head: FCOSNeckHead, strides: tuple[int, ...], center_sampling_radius: float = 1.5
    ) -> None:
        self.strides = strides
        self.anchor_generator = AnchorGenerator(
            tuple((s,) for s in strides), ((1.0,),) * len(strides)
        )
        self._fcos = FCOS(
            _NoBackbone(neck_head.head.classification_head.conv[0].in_channels),
            neck_head.num_classes,
            anchor_generator=self.anchor_generator,
            head=neck_head.head,
            center_sampling_radius=center_sampling_radius,
        )

    def anchors(
        self, batch: int, size_hw: tuple[int, int], feats: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[int]]:
        """Per-image anchors ``(L, 4)`` xyxy and the number of locations per level."""
        dummy = feats[0].new_zeros(()).expand(batch, 3, *size_hw)
        images = ImageList(dummy, [size_hw] * batch)
        grids = [f[:1, :1] for f in feats]  # only the spatial sizes matter
        anchors = self.anchor_generator(images, grids)
        return anchors, [int(f.shape[-2] * f.shape[-1]) for f in feats]

    def __call__(
        self,
        outputs: dict[str, torch.Tensor],
        targets: list[dict[str, torch.Tensor]],
        size_hw: tuple[int, int],
        feats: list[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Losses (classification, bbox_regression, bbox_ctrness) for one batch.

        ``targets``: per image ``{"boxes": (M, 4) float xyxy input pixels, "labels": (M,) int64}``.
        """
        anchors, per_level = self.anchors(len(targets), size_hw, feats)
        return self._fcos.compute_loss(targets, outputs, anchors, per_level)
