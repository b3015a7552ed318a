"""Numpy decoding: NMS agrees with torchvision's; FCOS boxes decode where they should."""

from __future__ import annotations

import numpy as np
import pytest

from customlabels.inference.decode import FcosDecodeParams, decode_classifier, decode_fcos, nms


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("iou", [0.3, 0.5, 0.7])
def test_nms_matches_torchvision(seed: int, iou: float) -> None:
    torch = pytest.importorskip("torch")
    from torchvision.ops import nms as tv_nms

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (300, 2))
    wh = rng.uniform(5, 60, (300, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(0, 1, 300)
    expected = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
    np.testing.assert_array_equal(nms(boxes, scores, iou), expected)


def _outputs(size_hw: tuple[int, int], strides: tuple[int, ...], k: int):  # type: ignore[no-untyped-def]
    n = sum((size_hw[0] // s) * (size_hw[1] // s) for s in strides)
    cls = np.full((n, k), -20.0, dtype=np.float32)
    reg = np.ones((n, 4), dtype=np.float32)
    ctr = np.full((n, 1), 20.0, dtype=np.float32)
    return cls, reg, ctr


def test_one_location_decodes_to_its_box() -> None:
    params = FcosDecodeParams(strides=(8, 16, 32), anchor_sizes=(8, 16, 32))
    h, w = 64, 96
    cls, reg, ctr = _outputs((h, w), params.strides, 3)
    # Level stride 16 starts after the 8×12 stride-8 grid; location (row 2, col 3) there.
    index = (h // 8) * (w // 8) + 2 * (w // 16) + 3
    cls[index, 2] = 20.0
    reg[index] = [1.0, 0.5, 2.0, 1.5]  # ltrb in anchor units (16 px)
    boxes, scores, labels = decode_fcos(cls, reg, ctr, (h, w), params)
    assert len(boxes) == 1
    np.testing.assert_allclose(boxes[0], [48 - 16, 32 - 8, 48 + 32, 32 + 24])
    assert labels[0] == 2
    assert scores[0] == pytest.approx(1.0, abs=1e-6)


def test_cap_and_threshold() -> None:
    params = FcosDecodeParams(score_threshold=0.5, max_detections=5, nms_iou=0.99)
    cls, reg, ctr = _outputs((64, 64), params.strides, 2)
    cls[:40, 0] = 5.0  # forty confident, barely overlapping candidates
    boxes, scores, _ = decode_fcos(cls, reg * 0.1, ctr, (64, 64), params)
    assert len(boxes) == 5
    assert np.all(scores > 0.5)


def test_empty_output() -> None:
    params = FcosDecodeParams()
    cls, reg, ctr = _outputs((64, 64), params.strides, 2)
    boxes, scores, labels = decode_fcos(cls, reg, ctr, (64, 64), params)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,)


@pytest.mark.parametrize(
    ("logits", "multi", "expected"),
    [
        ([0.0, 0.0], False, [0.5, 0.5]),
        ([0.0, 0.0], True, [0.5, 0.5]),
        ([1000.0, 0.0, -1000.0], False, [1.0, 0.0, 0.0]),
        ([1000.0, 0.0, -1000.0], True, [1.0, 0.5, 0.0]),
    ],
)
def test_classifier_scores(logits: list[float], multi: bool, expected: list[float]) -> None:
    np.testing.assert_allclose(decode_classifier(np.array(logits), multi), expected, atol=1e-9)
