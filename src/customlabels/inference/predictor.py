"""Run a model version folder with ONNX Runtime (numpy + Pillow; never torch).

``Predictor.load(model_dir)`` reads ``model.json`` and ``model.onnx``; ``predict(image)``
returns :class:`Detections` with boxes in the ORIGINAL image's ``xyxy`` pixels and CALIBRATED
confidences 0–1 (P(true positive), the card's ``calibration``), the raw scores beside them in
``raw_scores`` (boxes ``None`` for a classifier: one entry per label, every label scored).
With the card's ``tiling`` a detector also runs a large frame's tiles and merges their boxes
with the whole frame's (:mod:`customlabels.inference.tiling`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from customlabels.core.dataset import Task
from customlabels.core.detections import Detections
from customlabels.core.model_card import ONNX_NAME, ModelCard
from customlabels.errors import InvalidParameterError
from customlabels.inference.calibration import Calibration
from customlabels.inference.decode import FcosDecodeParams, decode_classifier, decode_fcos
from customlabels.inference.preprocess import preprocess
from customlabels.inference.tiling import merge_detections, tile_detections, tiling_applies

__all__ = ["Predictor"]


class Predictor:
    """A loaded model: card + ONNX Runtime session."""

    def __init__(self, card: ModelCard, session: Any, model_dir: Path) -> None:
        self.card = card
        self.session = session
        self.model_dir = model_dir
        self._decode = FcosDecodeParams.from_head(card.head)
        self.calibration = Calibration.from_card(card.labels, card.calibration)

    @classmethod
    def load(cls, model_dir: Path | str, threads: int = 1) -> Predictor:
        """Open ``model_dir`` (``model.json`` + ``model.onnx``), ``threads`` intra-op threads."""
        import onnxruntime as ort

        model_dir = Path(model_dir)
        card = ModelCard.load(model_dir)
        onnx_path = model_dir / ONNX_NAME
        if not onnx_path.is_file():
            raise InvalidParameterError(f"{model_dir}: missing {ONNX_NAME}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return cls(card, session, model_dir)

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    def raw(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the ONNX graph on a float32 ``(N, 3, H, W)`` batch; returns its outputs in order."""
        return list(self.session.run(None, {"images": tensor.astype(np.float32, copy=False)}))

    def predict(self, image: Image.Image) -> Detections:
        """Detect (or classify) one RGB image.

        Returns:
            Detections: detector: boxes ``xyxy`` original pixels (raw score above the head's
            ``score_threshold``, after NMS); classifier: ``boxes=None``, one score per label.
            ``scores``: calibrated confidences 0–1; ``raw_scores``: the decoder's, 0–1.
            With the card's ``tiling`` and a frame larger than the served input, the boxes
            are the whole frame's and its tiles' merged.
        """
        tensor, box = preprocess(image, self.card.input)
        outputs = self.raw(tensor[None])
        if self.card.task == Task.IMAGE_LEVEL_LABELS:
            scores = decode_classifier(outputs[0][0], self.card.multi_label)
            ids = np.arange(len(scores))
            return Detections(
                scores=self.calibration.apply(scores, ids),
                class_ids=ids,
                boxes=None,
                raw_scores=scores,
            )
        cls_logits, regression, centerness = outputs[:3]
        boxes, scores, labels = decode_fcos(
            cls_logits[0], regression[0], centerness[0], tensor.shape[1:], self._decode
        )
        boxes = box.to_original(boxes)
        tiling = self.card.tiling
        if tiling is not None and tiling_applies(image.size, self.card.input):
            tiles = tile_detections(self.raw, image, self.card.input, self._decode, tiling)
            boxes, scores, labels = merge_detections([(boxes, scores, labels), tiles], self._decode)
        return Detections(
            scores=self.calibration.apply(scores, labels),
            class_ids=labels,
            boxes=boxes,
            raw_scores=scores,
        )
