"""Model selection rules: the NMS IoU and tiling kept unless beaten by a margin, thresholds
shrunk by evidence."""

from __future__ import annotations

import numpy as np
import pytest

from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.core.model_card import TilingSpec
from customlabels.evaluation.metrics import detection_metrics
from customlabels.inference.decode import FcosDecodeParams
from customlabels.inference.tiling import merge_detections
from customlabels.training.selection import (
    DEFAULT_NMS_IOU,
    NMS_MARGIN,
    TILING_MARGIN,
    choose_nms_iou,
    choose_tiling,
    label_thresholds,
    selection_score,
)


def test_nms_iou_rule_keeps_the_default_within_the_margin() -> None:
    assert choose_nms_iou({0.4: 0.50, 0.5: 0.51, 0.6: 0.49, 0.7: 0.30}) == 0.5
    assert DEFAULT_NMS_IOU == 0.6
    assert choose_nms_iou({0.4: 0.5 + NMS_MARGIN / 2, 0.6: 0.5, 0.7: 0.1}) == 0.6
    assert choose_nms_iou({0.4: 0.5 + 2 * NMS_MARGIN, 0.6: 0.5}) == 0.4
    assert choose_nms_iou({0.5: 0.2, 0.6: 0.4}) == 0.6


def test_thresholds_shrink_towards_the_pooled_one_by_evidence() -> None:
    """A label with many validation instances keeps its own best-F1 threshold; one with three
    moves most of the way to the threshold best for all labels together; an unseen one takes
    it; ``prior=0`` gives the labels' own thresholds and 0.5 for the unseen."""
    rng = np.random.default_rng(0)
    records, preds = [], []
    for i in range(60):
        box = np.array([[10.0, 10.0, 50.0, 50.0]])
        label = 1 if i < 3 else 0  # "rare": 3 instances; "common": 57; "unseen": none
        records.append(ImageRecord(ref=f"im{i}", boxes=box, box_labels=np.array([label])))
        # the rare label's true boxes score low (0.2), the common one's high (0.6–0.9);
        # each image also has a false "common" box at 0.1–0.5
        true_score = 0.2 if label else rng.uniform(0.6, 0.9)
        preds.append(
            Detections(
                scores=np.array([true_score, rng.uniform(0.1, 0.5)]),
                class_ids=np.array([label, 0]),
                boxes=np.array([[10.0, 10.0, 50.0, 50.0], [100.0, 100.0, 140.0, 140.0]]),
            )
        )
    per_label = detection_metrics(records, preds, ["common", "rare", "unseen"]).per_label
    own = {n: m.best.threshold for n, m in per_label.items()}
    shrunk = label_thresholds(per_label, prior=10)
    plain = label_thresholds(per_label, prior=0)
    assert plain == pytest.approx({"common": own["common"], "rare": own["rare"], "unseen": 0.5})
    pooled = shrunk["unseen"]
    assert own["rare"] == pytest.approx(0.2) and pooled > 0.5
    assert shrunk["rare"] == pytest.approx((3 * 0.2 + 10 * pooled) / 13)
    assert abs(shrunk["common"] - own["common"]) < abs(shrunk["rare"] - own["rare"])


def test_tiling_rule_keeps_it_off_within_the_margin() -> None:
    a, b = TilingSpec((2, 2), 0.2, 1.5), TilingSpec((2, 2), 0.2, 2.0)
    assert choose_tiling(0.5, {}) is None
    assert choose_tiling(0.5, {a: 0.5 + TILING_MARGIN / 2, b: 0.4}) is None
    assert choose_tiling(0.5, {a: 0.5 + TILING_MARGIN, b: 0.5 + 2 * TILING_MARGIN}) == b
    assert choose_tiling(0.5, {a: 0.5 + TILING_MARGIN, b: 0.3}) == a


def _tiling_case(tile_finds_the_small_ones: bool) -> tuple[float, float]:
    """Validation scored whole-frame-only and with tiles merged in (as the detector task does):
    the whole frame finds each image's large object and misses its small one; the tiles find
    the large one again (a duplicate) and either the small one or a false box."""
    params = FcosDecodeParams(nms_iou=0.5)
    records, off, on = [], [], []
    for i in range(20):
        gt = np.array([[100.0, 100.0, 180.0, 180.0], [400.0, 300.0, 420.0, 320.0]])
        records.append(ImageRecord(ref=f"im{i}", boxes=gt, box_labels=np.array([0, 0])))
        full = (gt[:1] + 1.0, np.array([0.8]), np.array([0]))
        found = gt[1:] + 0.5 if tile_finds_the_small_ones else np.array([[600.0, 50, 620, 70]])
        tiles = (np.vstack([gt[:1], found]), np.array([0.7, 0.6]), np.array([0, 0]))
        off.append(Detections(scores=full[1], class_ids=full[2], boxes=full[0]))
        boxes, scores, labels = merge_detections([full, tiles], params)
        on.append(Detections(scores=scores, class_ids=labels, boxes=boxes))
        assert len(boxes) == 2  # the duplicate of the large object is merged away

    def score(preds: list[Detections]) -> float:
        return selection_score(detection_metrics(records, preds, ["bee"]).per_label)

    return score(off), score(on)


@pytest.mark.parametrize("helps", [True, False])
def test_tiling_is_chosen_only_where_it_helps_validation(helps: bool) -> None:
    off, on = _tiling_case(helps)
    tiling = TilingSpec((2, 2), 0.2, 2.0)
    chosen = choose_tiling(off, {tiling: on})
    if helps:
        assert on > off + TILING_MARGIN and chosen == tiling
    else:
        assert on <= off and chosen is None
