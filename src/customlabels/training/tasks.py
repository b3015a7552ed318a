"""What the training loop trains: one adapter per task (detector, classifier), in a registry.

An adapter owns the trainable module, draws a batch from its feature cache and returns the
losses, evaluates on the validation split, and builds the full module that is exported to ONNX.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.evaluation.curves import best_f1_threshold
from customlabels.evaluation.metrics import classification_metrics, detection_metrics
from customlabels.evaluation.reliability import pooled_outcomes
from customlabels.inference.decode import FcosDecodeParams, decode_classifier, decode_fcos
from customlabels.inference.model_card import InputSpec
from customlabels.inference.preprocess import Letterbox
from customlabels.training.backbone import Backbone
from customlabels.training.config import TrainConfig
from customlabels.training.detector import FCOSCriterion, FCOSDetector, FCOSNeckHead
from customlabels.training.views import CachedView, repeat_factors, sample_crops

__all__ = [
    "TASKS",
    "Evaluation",
    "TaskAdapter",
    "choose_nms_iou",
    "label_thresholds",
    "selection_score",
]

log = logging.getLogger(__name__)

# NMS IoU during training's validations, and the values tried after it (``eval.nms_iou: null``).
DEFAULT_NMS_IOU = 0.6
NMS_CANDIDATES = (0.4, 0.5, 0.6, 0.7)
NMS_MARGIN = 0.002
# Validation instances a label's own best-F1 threshold counts as, against the pooled one.
THRESHOLD_PRIOR = 10.0


@dataclass
class Evaluation:
    """Validation result: ``score`` drives model selection (higher is better)."""

    score: float
    summary: dict[str, Any]
    thresholds: dict[str, float] = field(default_factory=dict)


def selection_score(per_label: dict[str, Any], key: str = "ap50") -> float:
    """Mean of a per-label metric weighted by each label's ground-truth count.

    A plain mean over labels lets a label with two validation boxes swing the choice of
    checkpoint; weighting by instances keeps the choice stable (labels without GT count 0).
    """
    total = sum(m.num_gt for m in per_label.values())
    if total == 0:
        return 0.0
    return float(
        sum(
            m.num_gt * (0.0 if np.isnan(getattr(m, key)) else getattr(m, key))
            for m in per_label.values()
        )
        / total
    )


class TaskAdapter(Protocol):
    module: nn.Module

    def losses(self, rng: np.random.Generator) -> dict[str, torch.Tensor]: ...

    def evaluate(self) -> Evaluation: ...

    def tune_decoding(self) -> Evaluation | None: ...

    def predict_cached(self) -> list[Detections]: ...

    def export_module(self) -> nn.Module: ...

    def head_card(self) -> dict[str, Any]: ...


class DetectorTask:
    """FPN + FCOS head trained on crops of cached backbone features.

    With ``model.finetune_stages`` = k > 0 the backbone's last k stages train too (at
    ``optim.lr × model.tail_lr_scale``), over cached maps of the first ``3 - k`` levels.
    ``module`` holds ``neck_head`` and ``tail`` (the backbone's own blocks, so the exported
    backbone carries what was learnt).
    """

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
        return _param_groups(self.module, self.config)

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


_BACKBONE_PARTS = ("tail", "pool")


def _param_groups(module: nn.ModuleDict, config: TrainConfig) -> list[dict[str, Any]]:
    """The task's own layers at ``optim.lr``; fine-tuned backbone modules (``tail``, ``pool``)
    at ``optim.lr × model.tail_lr_scale``."""
    own = [p for name, m in module.items() if name not in _BACKBONE_PARTS for p in m.parameters()]
    backbone = [p for name in _BACKBONE_PARTS if name in module for p in module[name].parameters()]
    groups: list[dict[str, Any]] = [{"params": own}]
    if backbone:
        groups.append({"params": backbone, "lr_scale": config.model.tail_lr_scale})
    return groups


def choose_nms_iou(scores: dict[float, float]) -> float:
    """The NMS IoU with the best validation score; :data:`DEFAULT_NMS_IOU` unless another
    beats it by :data:`NMS_MARGIN` (``scores`` must hold the default)."""
    best = max(scores, key=lambda iou: scores[iou])
    return best if scores[best] >= scores[DEFAULT_NMS_IOU] + NMS_MARGIN else DEFAULT_NMS_IOU


def label_thresholds(per_label: dict[str, Any], prior: float = THRESHOLD_PRIOR) -> dict[str, float]:
    """Each label's assumed threshold: its best-F1 confidence on validation, shrunk towards the
    best-F1 confidence of all labels together in proportion to its evidence,
    ``(n·t_label + prior·t_all) / (n + prior)`` for ``n`` validation instances.

    A label seen three times in validation gets a threshold from three scores (noise: on the
    bee-crops classifier, bee's own 0.77 held out worse than the shrunk 0.70); a label never
    seen gets ``t_all``. ``prior = 0``: the labels' own thresholds, 0.5 for unseen labels.
    """
    scores, correct = pooled_outcomes(per_label)
    pooled = best_f1_threshold(scores, correct, sum(m.num_gt for m in per_label.values())).threshold
    if prior <= 0 or not np.isfinite(pooled):
        pooled = 0.5
    out = {}
    for name, m in per_label.items():
        t, n = m.best.threshold, m.num_gt
        own = n > 0 and np.isfinite(t)
        out[name] = float((n * t + prior * pooled) / (n + prior) if own else pooled)
    return out


class ClassifierHead(nn.Module):
    """Pooled backbone features ``(N, F)`` -> logits ``(N, K)`` (linear or one hidden layer)."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 0) -> None:
        super().__init__()
        if hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Dropout(0.2),
                nn.Linear(in_features, hidden),
                nn.ReLU(),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.net = nn.Sequential(nn.Dropout(0.2), nn.Linear(in_features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ClassifierModel(nn.Module):
    """``images (N, 3, H, W)`` -> ``logits (N, K)``: what is exported for classification."""

    def __init__(self, backbone: Backbone, head: ClassifierHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.pooled(images))


class ClassifierTask:
    """A (multi-)label head trained on cached features of augmented views: pooled vectors, or
    with ``model.finetune_stages`` = k > 0 the maps the last k stages (fine-tuned, with the final
    1×1 conv) start from."""

    def __init__(
        self,
        config: TrainConfig,
        backbone: Backbone,
        labels: list[str],
        pooled: torch.Tensor,
        targets: torch.Tensor,
        weights: np.ndarray,
        val_records: Sequence[ImageRecord],
        val_pooled: torch.Tensor,
        multi_label: bool,
        device: torch.device,
    ) -> None:
        self.config = config
        self.backbone = backbone
        self.labels = labels
        self.pooled = pooled  # (V, F) float32, or (V, C, h, w) float16 maps
        self.targets = targets  # (V, K) float32 multi-hot
        self.weights = weights
        self.val_records = list(val_records)
        self.val_pooled = val_pooled
        self.multi_label = multi_label
        self.device = device
        self.stages = config.model.finetune_stages
        head = ClassifierHead(
            backbone.spec.pooled_channels, len(labels), config.model.classifier_hidden
        )
        self.module: nn.ModuleDict = nn.ModuleDict({"head": head})
        if self.stages:
            self.module["tail"] = backbone.upper_blocks(self.stages)
            self.module["pool"] = backbone.pool_head()
            for name in ("tail", "pool"):
                for p in self.module[name].parameters():
                    p.requires_grad_(True)
        self.module.to(device)

    def param_groups(self) -> list[dict[str, Any]]:
        return _param_groups(self.module, self.config)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: cached pooled features, or (fine-tuning) the map the tail starts from."""
        if self.stages:
            tail = self.module["tail"]
            assert isinstance(tail, nn.ModuleList)
            x = x.float().contiguous(memory_format=torch.channels_last)
            c5 = self.backbone.continue_features(x, 2 - self.stages, tail)[-1]
            x = self.module["pool"](c5)
        return self.module["head"](x)

    def losses(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        p = self.weights / self.weights.sum()
        idx = torch.as_tensor(rng.choice(len(self.pooled), size=self.config.optim.batch_size, p=p))
        x = self.pooled[idx].to(self.device)
        y = self.targets[idx].to(self.device)
        logits = self._logits(x)
        if self.multi_label:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y)
        else:
            loss = nn.functional.cross_entropy(logits, y.argmax(dim=1), label_smoothing=0.05)
        return {"classification": loss}

    @torch.no_grad()
    def predict_cached(self) -> list[Detections]:
        self.module.eval()
        logits = (
            torch.cat([self._logits(c.to(self.device)) for c in self.val_pooled.split(64)])
            .cpu()
            .numpy()
        )
        self.module.train()
        out = []
        for row in logits:
            scores = decode_classifier(row, self.multi_label)
            out.append(Detections(scores=scores, class_ids=np.arange(len(scores)), boxes=None))
        return out

    def evaluate(self) -> Evaluation:
        preds = self.predict_cached()
        metrics = classification_metrics(
            self.val_records, preds, self.labels, multi_label=self.multi_label
        )
        # Macro mean of best-F1 over labels, so rare labels matter for the choice of checkpoint.
        f1s = [m.best.f1 for m in metrics.per_label.values() if m.num_gt > 0]
        score = float(np.mean([0.0 if np.isnan(f) else f for f in f1s])) if f1s else 0.0
        return Evaluation(score, metrics.to_dict(), label_thresholds(metrics.per_label))

    def tune_decoding(self) -> Evaluation | None:
        """A classifier has no decoding to choose."""
        return None

    def export_module(self) -> nn.Module:
        head = self.module["head"]
        assert isinstance(head, ClassifierHead)
        return ClassifierModel(self.backbone, head)

    def head_card(self) -> dict[str, Any]:
        return {"type": "classifier", "outputs": ["logits"]}


TASKS: dict[str, Callable[..., Any]] = {
    "detection": DetectorTask,
    "classification": ClassifierTask,
}
