"""The detector adapter: FPN + FCOS head trained on crops of cached backbone features."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from customlabels.core.dataset import ImageRecord, Task
from customlabels.core.detections import Detections
from customlabels.core.model_card import InputSpec, TilingSpec
from customlabels.evaluation.metrics import detection_metrics
from customlabels.inference.decode import FcosDecodeParams, decode_fcos
from customlabels.inference.preprocess import Letterbox
from customlabels.inference.tiling import (
    Triplet,
    merge_detections,
    tile_detections,
    tiling_applies,
)
from customlabels.training.adapter import TaskInputs, param_groups
from customlabels.training.backbone import Backbone
from customlabels.training.config import TrainConfig
from customlabels.training.detector import FCOSCriterion, FCOSDetector, FCOSNeckHead
from customlabels.training.selection import (
    DEFAULT_NMS_IOU,
    NMS_CANDIDATES,
    TILING_CANDIDATES,
    Evaluation,
    choose_nms_iou,
    choose_tiling,
    label_thresholds,
    selection_score,
)
from customlabels.training.views import (
    CachedView,
    build_views,
    load_image,
    repeat_factors,
    sample_crops,
    validation_features,
)

__all__ = ["DetectorTask"]

log = logging.getLogger(__name__)


class DetectorTask:
    """FPN + FCOS head trained on crops of cached backbone features.

    With ``model.finetune_stages`` = k > 0 the backbone's last k stages train too (at
    ``optim.lr × model.tail_lr_scale``), over cached maps of the first ``3 - k`` levels.
    ``module`` holds ``neck_head`` and ``tail`` (the backbone's own blocks, so the exported
    backbone carries what was learnt).
    """

    card_task: ClassVar[Task] = Task.OBJECT_LOCALIZATION
    resize: ClassVar[str] = "letterbox"

    @classmethod
    def build(cls, inputs: TaskInputs) -> tuple[DetectorTask, int]:
        c = inputs.config
        views = build_views(
            inputs.train,
            inputs.backbone,
            c.input,
            c.augment,
            c.seed,
            c.augment.views_per_image,
            inputs.device,
            inputs.cache_deadline,
            levels=inputs.cached_levels,
        )
        val_feats = validation_features(
            inputs.validation, inputs.backbone, inputs.spec, inputs.device, inputs.cached_levels
        )
        task = cls(
            c,
            inputs.backbone,
            inputs.labels,
            views,
            inputs.train,
            inputs.validation,
            val_feats,
            inputs.spec,
            inputs.device,
        )
        return task, len(views)

    def __init__(
        self,
        config: TrainConfig,
        backbone: Backbone,
        labels: list[str],
        views: list[CachedView],
        train_records: Sequence[ImageRecord],
        val_records: Sequence[ImageRecord],
        val_feats: list[tuple[list[torch.Tensor], Letterbox]],
        spec: InputSpec,
        device: torch.device,
    ) -> None:
        self.config = config
        self.backbone = backbone
        self.labels = labels
        self.views = views
        self.val_records = list(val_records)
        self.val_feats = val_feats
        self.spec = spec
        self.device = device
        m = config.model
        neck_head = FCOSNeckHead(backbone.spec.channels, len(labels), m.fpn_channels, m.head_convs)
        tail = backbone.upper_blocks(m.finetune_stages)
        for p in tail.parameters():
            p.requires_grad_(True)
        self.module: nn.ModuleDict = nn.ModuleDict({"neck_head": neck_head, "tail": tail})
        self.module.to(device)
        self.criterion = FCOSCriterion(neck_head, backbone.spec.strides, m.center_sampling_radius)
        rf = repeat_factors(train_records, len(labels), config.augment.repeat_threshold)
        self.weights = np.array([rf[v.image_index] for v in views], dtype=np.float64)
        e = config.eval
        self.decode = FcosDecodeParams(
            strides=backbone.spec.strides,
            anchor_sizes=backbone.spec.strides,
            score_threshold=e.score_threshold,
            topk_per_level=e.topk_per_level,
            nms_iou=DEFAULT_NMS_IOU if e.nms_iou is None else e.nms_iou,
            max_detections=e.max_detections,
        )
        self.tiling: TilingSpec | None = None
        # Per validation image, the chosen tiling's tile detections (frame pixels, raw scores).
        self._val_tiles: list[Triplet] | None = None

    def step_cap(self, views: int) -> int | None:
        return None

    def decoding_seconds(self, t_eval: float) -> float:
        """The NMS choice re-decodes one validation pass (~2 of them); the tiling choice runs
        every candidate's tiles of each large validation frame through the whole network: one
        frame's tiles are timed here, untrained weights cost the same."""
        seconds = 2 * t_eval if self.config.eval.nms_iou is None else 0.0
        large = self._large_validation_frames()
        if not self._tiling_wanted() or not large:
            return seconds
        image = load_image(self.val_records[large[0]])[0]
        run = self._tile_runner()
        t0 = time.monotonic()
        for tiling in TILING_CANDIDATES:
            tile_detections(run, image, self.spec, self.decode, tiling)
        return seconds + (time.monotonic() - t0) * len(large)

    def losses(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        c = self.config
        crop = sample_crops(
            self.views, self.weights, c.optim.batch_size, c.input.crop, c.augment, rng
        )
        feats = self._pyramid([f.to(self.device) for f in crop.feats])
        targets = [{k: v.to(self.device) for k, v in t.items()} for t in crop.targets]
        out = self.module["neck_head"](feats)
        return self.criterion(out, targets, crop.size_hw, feats)

    def _pyramid(self, cached: list[torch.Tensor]) -> list[torch.Tensor]:
        tail = self.module["tail"]
        assert isinstance(tail, nn.ModuleList)
        if not len(tail):
            return cached
        return cached + self.backbone.continue_features(cached[-1], len(cached) - 1, tail)

    def param_groups(self) -> list[dict[str, Any]]:
        return param_groups(self.module, self.config)

    @torch.no_grad()
    def _raw_validation(self) -> list[tuple[list[np.ndarray], tuple[int, int], Letterbox]]:
        """Per validation image: the head's outputs (numpy), the input size and its letterbox."""
        self.module.eval()
        raws = []
        for feats, box in self.val_feats:
            pyramid = self._pyramid(
                [
                    f[None].to(self.device).float().contiguous(memory_format=torch.channels_last)
                    for f in feats
                ]
            )
            out = self.module["neck_head"](pyramid)
            h = feats[0].shape[-2] * self.backbone.spec.strides[0]
            w = feats[0].shape[-1] * self.backbone.spec.strides[0]
            names = ("cls_logits", "bbox_regression", "bbox_ctrness")
            raws.append(([out[k][0].cpu().numpy() for k in names], (h, w), box))
        self.module.train()
        return raws

    def _decode_all(
        self,
        raws: list[tuple[list[np.ndarray], tuple[int, int], Letterbox]],
        params: FcosDecodeParams,
    ) -> list[Detections]:
        preds = []
        for (cls_logits, regression, centerness), hw, box in raws:
            boxes, scores, labels = decode_fcos(cls_logits, regression, centerness, hw, params)
            preds.append(Detections(scores=scores, class_ids=labels, boxes=box.to_original(boxes)))
        return preds

    def predict_cached(self) -> list[Detections]:
        """Validation predictions as served: with the chosen tiling, the whole frame's merged
        with the tiles' (kept from the choice, not run again)."""
        full = self._decode_all(self._raw_validation(), self.decode)
        return full if self._val_tiles is None else self._merged(full, self._val_tiles)

    def _evaluation(self, preds: list[Detections]) -> Evaluation:
        metrics = detection_metrics(self.val_records, preds, self.labels)
        return Evaluation(
            score=selection_score(metrics.per_label),
            summary=metrics.to_dict(),
            thresholds=label_thresholds(metrics.per_label),
        )

    def evaluate(self) -> Evaluation:
        return self._evaluation(self.predict_cached())

    def tune_decoding(self) -> Evaluation | None:
        """After training, on validation: with ``eval.nms_iou`` null, choose the NMS IoU among
        :data:`NMS_CANDIDATES` (the default stays unless another value beats it by
        ``NMS_MARGIN``); then, with ``eval.tiling``, the sliced inference among
        :data:`TILING_CANDIDATES` (off unless one beats the whole frame by ``TILING_MARGIN``).
        Returns the validation evaluation at the choice (its thresholds), None if nothing was
        chosen.

        Measured on stored bee and BCCD models (docs/training.md): bee frames choose NMS 0.4
        (dense clusters of small bees: fewer duplicates), BCCD keeps 0.6.
        """
        choose_nms = self.config.eval.nms_iou is None
        if not choose_nms and not self._tiling_wanted():
            return None
        raws = self._raw_validation()
        chosen: Evaluation | None = None
        if choose_nms:
            evals = {
                iou: self._evaluation(self._decode_all(raws, replace(self.decode, nms_iou=iou)))
                for iou in NMS_CANDIDATES
            }
            best = choose_nms_iou({iou: e.score for iou, e in evals.items()})
            log.info(
                "NMS IoU %.1f chosen on validation (score %s)",
                best,
                ", ".join(f"{iou}: {e.score:.4f}" for iou, e in evals.items()),
            )
            self.decode = replace(self.decode, nms_iou=best)
            chosen = evals[best]
        if not self._tiling_wanted():
            return chosen
        # The whole-frame predictions at the chosen NMS are reused: only the tiles run.
        full = self._decode_all(raws, self.decode)
        return self._choose_tiling(full, chosen or self._evaluation(full))

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

    def decoding_settings(self) -> dict[str, Any]:
        return {} if self.config.eval.nms_iou is not None else {"eval.nms_iou": self.decode.nms_iou}

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
