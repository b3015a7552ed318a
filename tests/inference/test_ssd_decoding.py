"""The SSD head's numpy decoding (``inference/ssd.py``), as the predictor serves it. Its anchors
are checked against TensorFlow's graph in ``tests/training/test_ssd.py``."""

from __future__ import annotations

import numpy as np
import pytest

from customlabels.errors import InvalidParameterError
from customlabels.inference.predictor import detection_decoder
from customlabels.inference.ssd import SsdDecodeParams, ssd_anchors


def test_anchors_follow_the_maps_of_any_input() -> None:
    params = SsdDecodeParams()
    anchors = ssd_anchors((384, 640), params)
    per_map = [3 * 24 * 40, 6 * 12 * 20, 6 * 6 * 10, 6 * 3 * 5, 6 * 2 * 3, 6 * 1 * 2]
    assert anchors.shape == (sum(per_map), 4)
    first = anchors[:3]  # the first location of the stride-16 map: centre (8, 8)
    np.testing.assert_allclose((first[:, :2] + first[:, 2:]) / 2, [[8, 8]] * 3)
    np.testing.assert_allclose(first[0, 2:] - first[0, :2], [30, 30])  # 0.1 × 300 px
    w, h = first[1, 2:] - first[1, :2]  # scale 0.2, aspect ratio 2: wide
    assert w == pytest.approx(60 * 2**0.5) and h == pytest.approx(60 / 2**0.5)


def test_card_head_round_trips_into_the_served_decoder() -> None:
    params = SsdDecodeParams(nms_iou=0.45, score_threshold=0.1)
    assert SsdDecodeParams.from_head(params.to_head()) == params
    decode = detection_decoder({"type": "ssd", **params.to_head()})
    anchors = ssd_anchors((64, 96), params)
    logits = np.full((len(anchors), 3), -5.0)
    logits[:, 0] = 5.0  # background everywhere ...
    logits[7] = [0.0, 6.0, 0.0]  # ... but one confident label-0 anchor
    boxes, scores, labels = decode([np.zeros((len(anchors), 4)), logits], (64, 96))
    assert labels.tolist() == [0] and scores[0] > 0.9
    np.testing.assert_allclose(boxes[0], np.clip(anchors[7], 0, [96, 64, 96, 64]))
    with pytest.raises(InvalidParameterError, match=r"head\.type"):
        detection_decoder({"type": "yolo"})
