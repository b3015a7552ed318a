"""The classifier adapter: a (multi-)label head on pooled features of cached augmented views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from customlabels.core.dataset import ImageRecord, Task
from customlabels.core.detections import Detections
from customlabels.evaluation.metrics import classification_metrics
from customlabels.inference.decode import decode_classifier
from customlabels.training.adapter import TaskInputs, param_groups
from customlabels.training.backbone import Backbone
from customlabels.training.config import TrainConfig
from customlabels.training.selection import Evaluation, label_thresholds
from customlabels.training.views import pooled_views, repeat_factors

__all__ = ["ClassifierHead", "ClassifierModel", "ClassifierTask"]


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

    card_task: ClassVar[Task] = Task.IMAGE_LEVEL_LABELS
    resize: ClassVar[str] = "stretch"

    @classmethod
    def build(cls, inputs: TaskInputs) -> tuple[ClassifierTask, int]:
        c, labels, train = inputs.config, inputs.labels, inputs.train
        pooled, index = pooled_views(
            train,
            inputs.backbone,
            inputs.spec,
            c.augment,
            c.seed,
            c.augment.views_per_image,
            inputs.device,
            deadline=inputs.cache_deadline,
            levels=inputs.cached_levels,
        )
        targets = torch.zeros(len(index), len(labels))
        for row, i in enumerate(index):
            targets[row, train[i].image_labels] = 1.0
        rf = repeat_factors(train, len(labels), c.augment.repeat_threshold)
        val_pooled, _ = pooled_views(
            inputs.validation,
            inputs.backbone,
            inputs.spec,
            c.augment,
            c.seed,
            1,
            inputs.device,
            levels=inputs.cached_levels,
        )
        task = cls(
            c,
            inputs.backbone,
            labels,
            pooled,
            targets,
            np.array([rf[i] for i in index]),
            inputs.validation,
            val_pooled,
            inputs.multi_label,
            inputs.device,
        )
        return task, len(index)

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
        return param_groups(self.module, self.config)

    def step_cap(self, views: int) -> int | None:
        # A head on cached features overfits long before a budget runs out: at most 30 passes
        # over the cached views.
        return max(200, 30 * views // self.config.optim.batch_size)

    def decoding_seconds(self, t_eval: float) -> float:
        return 0.0

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

    def chosen_tiling(self) -> None:
        """No sliced inference for a classifier."""
        return None

    def decoding_settings(self) -> dict[str, Any]:
        return {}

    def export_module(self) -> nn.Module:
        head = self.module["head"]
        assert isinstance(head, ClassifierHead)
        return ClassifierModel(self.backbone, head)

    def head_card(self) -> dict[str, Any]:
        return {"type": "classifier", "outputs": ["logits"]}
