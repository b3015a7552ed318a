"""The detector adapters' shared machinery (:class:`CachedDetectorTask`: cached views, crops,
fine-tuned trunk stages, validation, the NMS choice) and the default head's adapter
(:class:`DetectorTask`: FPN + FCOS). The SSD head's is ``ssd_task.py``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np
import torch
from torch import nn

from customlabels.core.dataset import ImageRecord, Task
from customlabels.core.detections import Detections
from customlabels.core.model_card import InputSpec
from customlabels.evaluation.metrics import detection_metrics
from customlabels.inference.decode import FcosDecodeParams, decode_fcos
from customlabels.inference.preprocess import Letterbox
from customlabels.inference.ssd import SsdDecodeParams
from customlabels.training.adapter import TaskInputs, param_groups
from customlabels.training.backbone import Backbone
from customlabels.training.config import TrainConfig
from customlabels.training.detector import FCOSCriterion, FCOSDetector, FCOSNeckHead
from customlabels.training.selection import (
    DEFAULT_NMS_IOU,
    NMS_CANDIDATES,
    Evaluation,
    choose_nms_iou,
    label_thresholds,
    selection_score,
)
from customlabels.training.views import (
    CachedView,
    build_views,
    repeat_factors,
    sample_crops,
    validation_features,
)

__all__ = ["CachedDetectorTask", "DetectorTask"]

log = logging.getLogger(__name__)

# A head's decoding settings (a frozen dataclass with ``nms_iou``).
P = TypeVar("P", FcosDecodeParams, SsdDecodeParams)
# One validation image: the head's outputs (numpy, batch dropped), the input (H, W), its letterbox.
Raw = tuple[list[np.ndarray], tuple[int, int], Letterbox]


class CachedDetectorTask(Generic[P]):
    """A detector head trained on crops of cached backbone features.

    With ``model.finetune_stages`` = k > 0 the backbone's last k stages train too (at
    ``optim.lr × model.tail_lr_scale``), over cached maps of the first ``3 - k`` levels.
    ``module`` holds the head's modules and ``tail`` (the backbone's own blocks, so the exported
    backbone carries what was learnt). A head supplies its modules, :meth:`_crop_losses`,
    :meth:`_outputs`, :meth:`_decode_one`, ``decode`` (its decoding settings), the export
    module and the card.
    """

    card_task: ClassVar[Task] = Task.OBJECT_LOCALIZATION
    resize: ClassVar[str] = "letterbox"
    decode: P

    @classmethod
    def build(cls, inputs: TaskInputs) -> tuple[Self, int]:
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
        tail = backbone.upper_blocks(config.model.finetune_stages)
        for p in tail.parameters():
            p.requires_grad_(True)
        self.module: nn.ModuleDict = nn.ModuleDict({**self._head_modules(), "tail": tail})
        self.module.to(device)
        rf = repeat_factors(train_records, len(labels), config.augment.repeat_threshold)
        self.weights = np.array([rf[v.image_index] for v in views], dtype=np.float64)

    # --- what a head supplies ---------------------------------------------------------------

    def _head_modules(self) -> dict[str, nn.Module]:
        """The head's trainable modules (``module`` entries besides ``tail``)."""
        raise NotImplementedError

    def _crop_losses(
        self,
        pyramid: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]],
        size_hw: tuple[int, int],
    ) -> dict[str, torch.Tensor]:
        """The losses of a batch of crops: ``pyramid`` ``[C3, C4, C5]``, targets in crop pixels."""
        raise NotImplementedError

    def _outputs(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        """The head's outputs in ``head_card()["outputs"]`` order, batch first."""
        raise NotImplementedError

    def _decode_one(
        self, outputs: list[np.ndarray], size_hw: tuple[int, int], params: P
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One image's outputs -> ``(boxes xyxy input pixels, scores 0–1, class_ids)``."""
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------

    def step_cap(self, views: int) -> int | None:
        return None

    def decoding_validations(self) -> int:
        return 2 if self.config.eval.nms_iou is None else 0  # ~ the NMS IoU choice

    def losses(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        c = self.config
        crop = sample_crops(
            self.views, self.weights, c.optim.batch_size, c.input.crop, c.augment, rng
        )
        pyramid = self._pyramid([f.to(self.device) for f in crop.feats])
        targets = [{k: v.to(self.device) for k, v in t.items()} for t in crop.targets]
        return self._crop_losses(pyramid, targets, crop.size_hw)

    def _pyramid(self, cached: list[torch.Tensor]) -> list[torch.Tensor]:
        tail = self.module["tail"]
        assert isinstance(tail, nn.ModuleList)
        if not len(tail):
            return cached
        return cached + self.backbone.continue_features(cached[-1], len(cached) - 1, tail)

    def param_groups(self) -> list[dict[str, Any]]:
        return param_groups(self.module, self.config)

    @torch.no_grad()
    def _raw_validation(self) -> list[Raw]:
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
            outputs = [o[0].cpu().numpy() for o in self._outputs(pyramid)]
            h = feats[0].shape[-2] * self.backbone.spec.strides[0]
            w = feats[0].shape[-1] * self.backbone.spec.strides[0]
            raws.append((outputs, (h, w), box))
        self.module.train()
        return raws

    def _decode_all(self, raws: list[Raw], params: P) -> list[Detections]:
        preds = []
        for outputs, hw, box in raws:
            boxes, scores, labels = self._decode_one(outputs, hw, params)
            preds.append(Detections(scores=scores, class_ids=labels, boxes=box.to_original(boxes)))
        return preds

    def predict_cached(self) -> list[Detections]:
        return self._decode_all(self._raw_validation(), self.decode)

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
        """With ``eval.nms_iou`` null, choose the NMS IoU among :data:`NMS_CANDIDATES` by the
        validation score of the trained model (the default stays unless another value beats it
        by ``NMS_MARGIN``); returns the validation evaluation at the choice (its thresholds).

        Measured on stored bee and BCCD models (docs/training.md): bee frames choose 0.4 (dense
        clusters of small bees: fewer duplicates), BCCD keeps 0.6.
        """
        if self.config.eval.nms_iou is not None:
            return None
        raws = self._raw_validation()
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
        return evals[best]

    def decoding_settings(self) -> dict[str, Any]:
        return {} if self.config.eval.nms_iou is not None else {"eval.nms_iou": self.decode.nms_iou}


class DetectorTask(CachedDetectorTask[FcosDecodeParams]):
    """FPN + FCOS head (``model.head: fcos``, the default); ``module``: ``neck_head``, ``tail``."""

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
        super().__init__(
            config,
            backbone,
            labels,
            views,
            train_records,
            val_records,
            val_feats,
            spec,
            device,
        )
        m, e = config.model, config.eval
        neck_head = self.module["neck_head"]
        assert isinstance(neck_head, FCOSNeckHead)
        self.criterion = FCOSCriterion(neck_head, backbone.spec.strides, m.center_sampling_radius)
        self.decode = FcosDecodeParams(
            strides=backbone.spec.strides,
            anchor_sizes=backbone.spec.strides,
            score_threshold=e.score_threshold,
            topk_per_level=e.topk_per_level,
            nms_iou=DEFAULT_NMS_IOU if e.nms_iou is None else e.nms_iou,
            max_detections=e.max_detections,
        )

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
