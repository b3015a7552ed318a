"""The whole COCO SSD as a detector (``model.head: ssd``): anchors, box coding, loss, export.

The anchors and box coder are checked against the frozen graph itself: its anchor generator's
constants (scales and aspect ratios of each map) and box decoder's (10, 10, 5, 5), and the COCO
box predictors decoded with our anchors on a real photo (Grace Hopper, shipped with matplotlib)
put the tie box on the tie. Wrong anchor order, sizes, centres or box-code order move it off.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from customlabels.core.model_card import InputSpec
from customlabels.errors import ConfigError
from customlabels.inference.preprocess import preprocess
from customlabels.inference.ssd import (
    BOX_WEIGHTS,
    SsdDecodeParams,
    decode_boxes,
    ssd_anchor_specs,
    ssd_anchors,
)
from customlabels.training.backbone_graphdef import read_float_constants
from customlabels.training.backbone_ssd import SSDMobileNetV2, graph_path
from customlabels.training.config import HeadName, TrainConfig
from customlabels.training.export import check_onnx, export_onnx
from customlabels.training.recipe import auto_config, summarize
from customlabels.training.ssd import SSDCriterion, SSDDetector, SSDHead

PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
PERSON, TIE = 1, 32  # COCO category ids
# Drawn by hand on the 300×300 resize of the photo: the tie, and the person (the whole frame
# below the top of the cap).
TIE_BOX = np.array([130.0, 208.0, 172.0, 268.0])
PERSON_BOX = np.array([0.0, 10.0, 300.0, 300.0])


@pytest.fixture(scope="module")
def net() -> SSDMobileNetV2:
    return SSDMobileNetV2.from_package()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _tensor(img: Image.Image, spec: InputSpec) -> torch.Tensor:
    return torch.from_numpy(preprocess(img, spec)[0])[None]


def _spec(net: SSDMobileNetV2, w: int, h: int) -> InputSpec:
    m, s = list(net.spec.mean), list(net.spec.std)
    return InputSpec(width=w, height=h, resize="letterbox", mean=m, std=s, pad_value=m[0])


def test_anchor_generator_and_box_coder_are_the_graphs() -> None:
    c = read_float_constants(graph_path(), ("MultipleGridAnchorGenerator/", "Postprocessor/"))
    g = "MultipleGridAnchorGenerator/"
    # Per map k: the boxes' scales (div_{14+k}/x) and aspect ratios (Sqrt_k/x), in box order.
    for k, boxes in enumerate(ssd_anchor_specs()):
        scales = c[f"{g}div_{14 + k}/x"]
        ratios = c[f"{g}Sqrt{'' if k == 0 else f'_{k}'}/x"]
        np.testing.assert_allclose([s for s, _ in boxes], scales, rtol=1e-5)
        np.testing.assert_allclose([a for _, a in boxes], ratios, rtol=1e-4)
    # The decoder divides ty, tx by 10 and th, tw by 5 (ours: dx, dy, dw, dh: same pairs).
    d = "Postprocessor/Decode/"
    graph = [float(c[f"{d}{n}/y"]) for n in ("div", "div_1", "div_2", "div_3")]
    assert graph == [10.0, 10.0, 5.0, 5.0] and list(BOX_WEIGHTS) == graph
    assert ssd_anchors((300, 300), SsdDecodeParams()).shape == (1917, 4)


def test_coco_box_predictors_decode_onto_the_tie_and_the_person(net: SSDMobileNetV2) -> None:
    """The kept COCO box predictors (through :class:`SSDHead`, which reorders their channels)
    decoded with our anchors and box coder land on the person and the tie."""
    img = Image.open(PHOTO).convert("RGB").resize((300, 300), Image.Resampling.BILINEAR)
    x = _tensor(img, _spec(net, 300, 300))
    head = SSDHead(net, num_classes=2).eval()
    with torch.no_grad():
        _, coco_logits = net.ssd_head(x)
        c4, c5 = net.features(x)[1:]
        regression = head(c4, c5)["bbox_regression"][0].numpy()
    params = SsdDecodeParams()
    boxes = decode_boxes(regression, ssd_anchors((300, 300), params), params.box_weights)
    scores = coco_logits[0].sigmoid().numpy()
    tie = boxes[scores[:, TIE].argmax()]
    person = boxes[scores[:, PERSON].argmax()]
    assert _iou(tie, TIE_BOX) > 0.7, tie
    assert _iou(person, PERSON_BOX) > 0.85, person


def test_loss_decreases_on_a_real_image(net: SSDMobileNetV2, tiny_detector_data) -> None:  # type: ignore[no-untyped-def]
    train = tiny_detector_data[0]
    rec = next(r for r in train.images if len(r.boxes) >= 2)
    assert rec.path is not None
    spec = _spec(net, 640, 384)
    tensor, box = preprocess(Image.open(rec.path).convert("RGB"), spec)
    sx, sy = box.scale_xy
    targets = [
        {
            "boxes": torch.as_tensor(rec.boxes * [sx, sy, sx, sy], dtype=torch.float32),
            "labels": torch.as_tensor(rec.box_labels),
        }
    ]
    with torch.no_grad():
        c4, c5 = net.features(torch.from_numpy(tensor)[None])[1:]
    torch.manual_seed(0)
    head = SSDHead(net, num_classes=len(train.labels.names))
    criterion = SSDCriterion(SsdDecodeParams(), len(train.labels.names))
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = sum(criterion(head(c4, c5), targets, (384, 640)).values())
        assert isinstance(loss, torch.Tensor) and torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_exports_to_onnx_like_pytorch(net: SSDMobileNetV2, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SSDDetector(net, SSDHead(net, num_classes=3)).eval()
    path = export_onnx(model, tmp_path / "m.onnx", ["bbox_regression", "cls_logits"], (384, 640))
    assert check_onnx(model, path, (384, 640)) <= 1e-4
    with torch.no_grad():
        regression, logits = model(torch.zeros(1, 3, 384, 640))
    anchors = ssd_anchors((384, 640), SsdDecodeParams())
    assert regression.shape == (1, len(anchors), 4) and logits.shape == (1, len(anchors), 4)


def test_numpy_box_decoding_inverts_torchvisions_encoding() -> None:
    """Training encodes with torchvision's BoxCoder, serving decodes in numpy: the same code."""
    from torchvision.models.detection._utils import BoxCoder

    anchors = ssd_anchors((96, 128), SsdDecodeParams())[:50]
    g = torch.Generator().manual_seed(0)
    jitter = torch.rand(len(anchors), 4, generator=g, dtype=torch.float64) * 8 - 4
    boxes = torch.from_numpy(anchors) + jitter
    codes = BoxCoder(weights=BOX_WEIGHTS).encode_single(boxes, torch.from_numpy(anchors))
    np.testing.assert_allclose(decode_boxes(codes.numpy(), anchors, BOX_WEIGHTS), boxes, atol=1e-6)


def test_recipe_picks_the_ssd_backbone_and_a_larger_input(tiny_detector_data) -> None:  # type: ignore[no-untyped-def]
    train = tiny_detector_data[0]
    summary = summarize(train.images, train.task)
    base = TrainConfig.from_dict({"model": {"head": "ssd"}})
    config, _ = auto_config(base, {"model": {"head": "ssd"}}, summary)
    assert config.model.head == HeadName.SSD
    assert config.model.backbone.value == "mobilenetv2-ssd-coco"
    fcos, _ = auto_config(TrainConfig(), {}, summary)
    assert config.input.width >= fcos.input.width
    user = {"model": {"head": "ssd", "backbone": "efficientnet-lite0"}}
    with pytest.raises(ConfigError, match=r"model\.head: ssd"):
        auto_config(TrainConfig.from_dict(user), user, summary)


@pytest.mark.slow
def test_trains_exports_and_serves(tmp_path: Path, tiny_detector_data) -> None:  # type: ignore[no-untyped-def]
    """A few steps of the real recipe with the SSD head on 12 bee images; the model folder
    serves through ONNX Runtime (no torch) with the SSD decoder."""
    from customlabels.core.model_card import ModelCard
    from customlabels.inference.predictor import Predictor
    from customlabels.training import train_dataset

    train, val, test, config = tiny_detector_data
    config = config.resolved(
        {"model.head": "ssd", "model.backbone": "mobilenetv2-ssd-coco", "optim.steps": 30}
    )
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
    assert card.head["type"] == "ssd" and card.recipe["model"]["backbone"] == "mobilenetv2-ssd-coco"
    assert card.training["onnx_max_abs_diff"] <= 1e-4
    image = test.images[0].path
    assert image is not None
    detections = Predictor.load(out).predict(Image.open(image).convert("RGB"))
    assert detections.boxes is not None and len(detections.boxes) == len(detections.scores)
