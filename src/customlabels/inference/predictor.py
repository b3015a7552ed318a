"""Run a model version folder with ONNX Runtime (numpy + Pillow; never torch).

``Predictor.load(model_dir)`` reads ``model.json`` and ``model.onnx``; ``predict(image)``
returns :class:`Detections` with boxes in the ORIGINAL image's ``xyxy`` pixels and CALIBRATED
confidences 0–1 (P(true positive), the card's ``calibration``), the raw scores beside them in
``raw_scores`` (boxes ``None`` for a classifier: one entry per label, every label scored).
With the card's ``tiling`` a detector also runs a large frame's tiles and merges their boxes
with the whole frame's (:mod:`customlabels.inference.tiling`).
"""

from __future__ import annotations

from collections.abc import Callable
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
from customlabels.inference.ssd import SsdDecodeParams, decode_ssd, ssd_anchors
from customlabels.inference.tiling import merge_detections, tile_detections, tiling_applies

__all__ = ["Predictor", "detection_decoder"]

# One image's ONNX outputs (batch dimension dropped) and input (H, W) -> boxes, scores, labels.
Decoder = Callable[[list[np.ndarray], tuple[int, int]], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _fcos_decoder(head: dict[str, Any]) -> Decoder:
    params = FcosDecodeParams.from_head(head)
    return lambda out, hw: decode_fcos(out[0], out[1], out[2], hw, params)


def _ssd_decoder(head: dict[str, Any]) -> Decoder:
    params = SsdDecodeParams.from_head(head)
    anchors: dict[tuple[int, int], np.ndarray] = {}  # per input size: served at one size

    def decode(out: list[np.ndarray], hw: tuple[int, int]) -> tuple[Any, Any, Any]:
        if hw not in anchors:
            anchors[hw] = ssd_anchors(hw, params)
        return decode_ssd(out[0], out[1], hw, params, anchors[hw])

    return decode


# model.json head "type" -> its decoder (a card without a type is an FCOS detector).
_DECODERS: dict[str, Callable[[dict[str, Any]], Decoder]] = {
    "fcos": _fcos_decoder,
    "ssd": _ssd_decoder,
}


def detection_decoder(head: dict[str, Any]) -> Decoder:
    """The numpy decoder of a detector's ``model.json`` ``head``."""
    kind = str(head.get("type", "fcos"))
    try:
        return _DECODERS[kind](head)
    except KeyError:
        raise InvalidParameterError(
            f"model.json head.type: expected one of {sorted(_DECODERS)}, got {kind!r}"
        ) from None


class Predictor:
    """A loaded model: card + ONNX Runtime session."""

    def __init__(self, card: ModelCard, session: Any, model_dir: Path) -> None:
        self.card = card
        self.session = session
        self.model_dir = model_dir
        self._decode = (
            detection_decoder(card.head) if card.task == Task.OBJECT_LOCALIZATION else None
        )
        if card.tiling is not None and card.head.get("type", "fcos") != "fcos":
            raise InvalidParameterError(
                f"{model_dir}: model.json tiling: expected an FCOS head, got "
                f"{card.head.get('type')!r} (the SSD head is served whole, untiled)"
            )
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
        assert self._decode is not None  # a detector's card
        hw = (int(tensor.shape[1]), int(tensor.shape[2]))
        boxes, scores, labels = self._decode([o[0] for o in outputs], hw)
        boxes = box.to_original(boxes)
        tiling = self.card.tiling
        if tiling is not None and tiling_applies(image.size, self.card.input):
            fcos = FcosDecodeParams.from_head(self.card.head)  # tiling: FCOS cards only (init)
            tiles = tile_detections(self.raw, image, self.card.input, fcos, tiling)
            boxes, scores, labels = merge_detections([(boxes, scores, labels), tiles], fcos)
        return Detections(
            scores=self.calibration.apply(scores, labels),
            class_ids=labels,
            boxes=boxes,
            raw_scores=scores,
        )
