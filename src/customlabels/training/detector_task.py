"""The default detector head's adapter (``model.head: fcos``): FPN + FCOS trained on crops of
cached backbone features, with sliced inference chosen on validation (``eval.tiling``). The
shared machinery is :class:`~customlabels.training.cached_detector.CachedDetectorTask`."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from customlabels.core.detections import Detections
from customlabels.core.model_card import TilingSpec
from customlabels.inference.decode import FcosDecodeParams, decode_fcos
from customlabels.inference.tiling import (
    Triplet,
    merge_detections,
    tile_detections,
    tiling_applies,
)
from customlabels.training.cached_detector import CachedDetectorTask
from customlabels.training.detector import FCOSCriterion, FCOSDetector, FCOSNeckHead
from customlabels.training.selection import (
    DEFAULT_NMS_IOU,
    TILING_CANDIDATES,
    Evaluation,
    choose_tiling,
)
from customlabels.training.views import load_image

__all__ = ["DetectorTask"]

log = logging.getLogger(__name__)


class DetectorTask(CachedDetectorTask[FcosDecodeParams]):
    """FPN + FCOS head (``model.head: fcos``, the default); ``module``: ``neck_head``, ``tail``."""

    def _setup_head(self) -> None:
        m, e = self.config.model, self.config.eval
        strides = self.backbone.spec.strides
        neck_head = self.module["neck_head"]
        assert isinstance(neck_head, FCOSNeckHead)
        self.criterion = FCOSCriterion(neck_head, strides, m.center_sampling_radius)
        self.decode = FcosDecodeParams(
            strides=strides,
            anchor_sizes=strides,
            score_threshold=e.score_threshold,
            topk_per_level=e.topk_per_level,
            nms_iou=DEFAULT_NMS_IOU if e.nms_iou is None else e.nms_iou,
            max_detections=e.max_detections,
        )
        self.tiling: TilingSpec | None = None
        # Per validation image, the chosen tiling's tile detections (frame pixels, raw scores).
        self._val_tiles: list[Triplet] | None = None

    def _head_modules(self) -> dict[str, nn.Module]:
        m = self.config.model
        channels = self.backbone.spec.channels
        return {"neck_head": FCOSNeckHead(channels, len(self.labels), m.fpn_channels, m.head_convs)}

    def _crop_losses(
        self,
        pyramid: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]],
        size_hw: tuple[int, int],
    ) -> dict[str, torch.Tensor]:
        out = self.module["neck_head"](pyramid)
        return self.criterion(out, targets, size_hw, pyramid)

    def _outputs(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        out = self.module["neck_head"](pyramid)
        return [out[k] for k in ("cls_logits", "bbox_regression", "bbox_ctrness")]

    def _decode_one(
        self, outputs: list[np.ndarray], size_hw: tuple[int, int], params: FcosDecodeParams
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cls_logits, regression, centerness = outputs
        return decode_fcos(cls_logits, regression, centerness, size_hw, params)

    def decoding_seconds(self, t_eval: float) -> float:
        """The NMS choice re-decodes one validation pass (~2 of them); the tiling choice runs
        every candidate's tiles of each large validation frame through the whole network: one
        frame's tiles are timed here, untrained weights cost the same."""
        seconds = super().decoding_seconds(t_eval)
        large = self._large_validation_frames()
        if not self._tiling_wanted() or not large:
            return seconds
        image = load_image(self.val_records[large[0]])[0]
        run = self._tile_runner()
        t0 = time.monotonic()
        for tiling in TILING_CANDIDATES:
            tile_detections(run, image, self.spec, self.decode, tiling)
        return seconds + (time.monotonic() - t0) * len(large)

    def _tiling_wanted(self) -> bool:
        """Tiling is tried when the config allows it and most validation frames are larger than
        the served input (on small frames tiles would only magnify what is seen whole)."""
        large = self._large_validation_frames()
        return self.config.eval.tiling and 2 * len(large) > len(self.val_records)

    def _large_validation_frames(self) -> list[int]:
        return [
            i
            for i, (_, box) in enumerate(self.val_feats)
            if tiling_applies(box.original_wh, self.spec)
        ]

    def _tile_runner(self) -> Any:
        """The whole trained network (as exported) on a numpy batch, outputs as numpy."""
        detector = self.export_module()

        @torch.no_grad()
        def run(batch: np.ndarray) -> list[np.ndarray]:
            self.module.eval()
            x = torch.from_numpy(batch).to(self.device)
            out = detector(x.contiguous(memory_format=torch.channels_last))
            self.module.train()
            return [o.float().cpu().numpy() for o in out]

        return run

    def _choose_tiling(self, full: list[Detections], off: Evaluation) -> Evaluation:
        """Score each tiling candidate (the tiles' detections merged into ``full``) against
        ``off``, the whole frame alone; keep the choice and its validation tiles."""
        run = self._tile_runner()
        large = set(self._large_validation_frames())
        empty: Triplet = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))
        tiles: dict[TilingSpec, list[Triplet]] = {t: [] for t in TILING_CANDIDATES}
        for i, rec in enumerate(self.val_records):
            image = load_image(rec)[0] if i in large else None
            for tiling, out in tiles.items():
                out.append(
                    empty
                    if image is None
                    else tile_detections(run, image, self.spec, self.decode, tiling)
                )
        evals = {t: self._evaluation(self._merged(full, parts)) for t, parts in tiles.items()}
        choice = choose_tiling(off.score, {t: e.score for t, e in evals.items()})
        log.info(
            "tiling %s on validation (score off: %.4f, %s)",
            choice.to_dict() if choice else "off",
            off.score,
            ", ".join(f"{t.to_dict()}: {e.score:.4f}" for t, e in evals.items()),
        )
        self.tiling = choice
        if choice is None:
            return off
        self._val_tiles = tiles[choice]
        return evals[choice]

    def _merged(self, full: list[Detections], tiles: list[Triplet]) -> list[Detections]:
        out = []
        for det, part in zip(full, tiles, strict=True):
            assert det.boxes is not None
            boxes, scores, labels = merge_detections(
                [(det.boxes, det.scores, det.class_ids), part], self.decode
            )
            out.append(Detections(scores=scores, class_ids=labels, boxes=boxes))
        return out

    def chosen_tiling(self) -> TilingSpec | None:
        return self.tiling

    def _served(self, full: list[Detections]) -> list[Detections]:
        """With the chosen tiling, the whole frame's merged with the tiles' (kept from the
        choice, not run again)."""
        return full if self._val_tiles is None else self._merged(full, self._val_tiles)

    def export_module(self) -> nn.Module:
        neck_head = self.module["neck_head"]
        assert isinstance(neck_head, FCOSNeckHead)
        return FCOSDetector(self.backbone, neck_head)

    def head_card(self) -> dict[str, Any]:
        d = self.decode
        return {
            "type": "fcos",
            "outputs": ["cls_logits", "bbox_regression", "centerness"],
            "strides": list(d.strides),
            "anchor_sizes": list(d.anchor_sizes),
            "score_threshold": d.score_threshold,
            "topk_per_level": d.topk_per_level,
            "nms_iou": d.nms_iou,
            "max_detections": d.max_detections,
            "size_divisor": 32,
        }
