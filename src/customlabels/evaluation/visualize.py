"""``customlabels visualize``: draw a model's detections on images at one or more confidence
thresholds, side by side (the blog's "MinConfidence 99.4 vs 90" figure)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from customlabels.core.detections import Detections
from customlabels.core.model_card import ModelCard
from customlabels.errors import InvalidParameterError
from customlabels.evaluation.draw import draw_detections, fit, side_by_side
from customlabels.evaluation.run import PredictorLike

__all__ = ["parse_min_confidences", "visualize"]


def parse_min_confidences(text: str | None) -> list[float | None]:
    """``"99.4,90"`` → ``[99.4, 90.0]`` (0–100); ``None``, empty or ``auto`` → ``None``: the
    card's assumed thresholds (``"auto,90"`` → ``[None, 90.0]``)."""
    if text is None or not text.strip():
        return [None]
    out: list[float | None] = []
    for part in text.split(","):
        if part.strip().lower() == "auto":
            out.append(None)
            continue
        try:
            value = float(part)
        except ValueError:
            raise InvalidParameterError(
                f"--min-confidence: expected numbers in 0–100 separated by commas, got {text!r}"
            ) from None
        if not 0 <= value <= 100:
            raise InvalidParameterError(f"--min-confidence: expected 0–100, got {value:g}")
        out.append(value)
    return out


def _keep(dets: Detections, card: ModelCard, min_confidence: float | None) -> Detections:
    if min_confidence is not None:
        return dets[dets.scores * 100.0 >= min_confidence]
    thr = np.array([card.threshold_for(name) for name in card.labels] or [0.5])
    return dets[dets.scores >= thr[dets.class_ids]] if len(dets) else dets


def visualize(
    model_dir: Path,
    images: Sequence[Path],
    min_confidences: Sequence[float | None],
    out_dir: Path,
    *,
    threads: int = 1,
    max_side: int = 1280,
    predictor: PredictorLike | None = None,
) -> list[Path]:
    """Write ``<stem>.visualized.png`` per image into ``out_dir``; returns the paths.

    Args:
        min_confidences: one panel per value (0–100); ``None`` applies each label's assumed
            threshold from the model card, as ``detect`` does without ``--min-confidence``.
        max_side: each panel is downscaled to at most this many pixels a side.
    """
    from customlabels.io.images import decode_image

    if predictor is None:
        from customlabels.inference.predictor import Predictor

        predictor = Predictor.load(Path(model_dir), threads=threads)
    card = predictor.card
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in images:
        image = decode_image(Path(path).read_bytes())
        dets = predictor.predict(image)
        panels = []
        for c in min_confidences:
            title = "the model's own thresholds" if c is None else f"MinConfidence {c:g}"
            kept = _keep(dets, card, c)
            drawn = draw_detections(image, kept, card.labels, title=f"{title} · {len(kept)} found")
            panels.append(fit(drawn, max_side)[0])
        target = out_dir / f"{Path(path).stem}.visualized.png"
        (side_by_side(panels) if len(panels) > 1 else panels[0]).save(target)
        written.append(target)
    return written
