"""What every detector head's adapter shares (:class:`CachedDetectorTask`): cached views of the
training images and crops of them, fine-tuned trunk stages, validation, the NMS choice. The
heads: ``detector_task.py`` (FPN + FCOS, the default), ``ssd_task.py`` (the whole COCO SSD)."""

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
from customlabels.core.model_card import InputSpec, TilingSpec
from customlabels.evaluation.metrics import detection_metrics
from customlabels.inference.decode import FcosDecodeParams
from customlabels.inference.preprocess import Letterbox
from customlabels.inference.ssd import SsdDecodeParams
from customlabels.training.adapter import TaskInputs, param_groups
from customlabels.training.backbone import Backbone
from customlabels.training.config import TrainConfig
from customlabels.training.selection import (
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

__all__ = ["CachedDetectorTask", "Raw"]

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
        self._setup_head()

    # --- what a head supplies ---------------------------------------------------------------

    def _head_modules(self) -> dict[str, nn.Module]:
        """The head's trainable modules (``module`` entries besides ``tail``)."""
        raise NotImplementedError

    def _setup_head(self) -> None:
        """The head's loss and decoding parameters, once ``module`` exists (end of ``__init__``)."""
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

    def decoding_seconds(self, t_eval: float) -> float:
        """The NMS choice re-decodes one validation pass (~2 of them)."""
        return 2 * t_eval if self.config.eval.nms_iou is None else 0.0

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
        """Validation predictions as served (see :meth:`_served`)."""
        return self._served(self._decode_all(self._raw_validation(), self.decode))

    def _served(self, full: list[Detections]) -> list[Detections]:
        """The whole frames' validation predictions as the served model gives them (a head with
        sliced inference merges its tiles' in)."""
        return full

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
        """Whether :meth:`tune_decoding` tries sliced inference (:meth:`_choose_tiling`)."""
        return False

    def _choose_tiling(self, full: list[Detections], off: Evaluation) -> Evaluation:
        """Choose the sliced inference on validation; returns the evaluation at the choice."""
        raise NotImplementedError

    def chosen_tiling(self) -> TilingSpec | None:
        return None

    def decoding_settings(self) -> dict[str, Any]:
        return {} if self.config.eval.nms_iou is not None else {"eval.nms_iou": self.decode.nms_iou}
