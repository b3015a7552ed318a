"""What sliced inference buys on a stored detector: its test split with tiling off and on.

    .venv/bin/python bench/tiling.py MODEL_DIR [MODEL_DIR ...] [--latency-images 8] [--repeats 3]

Each ``MODEL_DIR`` is a detector trained on a shared set (``stored_models.split_records``). The
settings compared: off, the card's own ``tiling`` (if any) and every ``TILING_CANDIDATES`` entry,
all at the card's NMS IoU. The whole frame runs once per validation and test image (ONNX
Runtime, 2 threads, as served) and each setting's tiles once more; the merge is the served one
(``inference/tiling.py``). Per setting: the validation score the training run's choice uses
(AP@0.5 weighted by boxes; "chosen" marks what ``choose_tiling`` keeps), test F1 and mAP@0.5
at thresholds chosen on validation at that setting (each label's best F1: the tiling effect
alone, as ``nms_choice.py``), per-label F1 / AP@0.5, recall by box side on the served input at
those thresholds (all labels; a box is found by a same-label prediction at IoU ≥ 0.5, as
``detector_errors.py``), and latency: ``Predictor.predict`` (decode, tiles, merge included) on
the largest test frames, median over images of the median of ``--repeats`` runs, in ms per
frame, per 0.1 MP of frame and per 0.1 MP of network input. Results: printed, and
``bench/results/tiling.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from customlabels.core.dataset import ImageRecord
from customlabels.core.detections import Detections
from customlabels.core.model_card import TilingSpec
from customlabels.evaluation.matching import box_iou
from customlabels.evaluation.metrics import detection_metrics
from customlabels.inference.decode import FcosDecodeParams, decode_fcos
from customlabels.inference.predictor import Predictor
from customlabels.inference.preprocess import preprocess
from customlabels.inference.tiling import (
    Triplet,
    merge_detections,
    tile_detections,
    tile_grid,
    tile_input_spec,
    tiling_applies,
)
from customlabels.training.selection import TILING_CANDIDATES, choose_tiling, selection_score
from stored_models import REPO, split_records

RESULTS = REPO / "bench" / "results" / "tiling.md"
SIDES = [0, 16, 24, 32, 48, 64, 128, 10_000]
EMPTY: Triplet = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


@dataclass
class Scored:
    """One split's images and, per setting (None: off), their detections."""

    records: list[ImageRecord]
    preds: dict[TilingSpec | None, list[Detections]]


def _open(rec: ImageRecord) -> Image.Image:
    assert rec.path is not None
    with Image.open(rec.path) as im:
        return im.convert("RGB")


def score_split(
    predictor: Predictor, records: list[ImageRecord], settings: list[TilingSpec | None]
) -> Scored:
    """The whole frame once per image, each setting's tiles once, merged as served."""
    card = predictor.card
    params = FcosDecodeParams.from_head(card.head)
    preds: dict[TilingSpec | None, list[Detections]] = {s: [] for s in settings}
    for rec in records:
        image = _open(rec)
        tensor, box = preprocess(image, card.input)
        cls_logits, regression, centerness = predictor.raw(tensor[None])[:3]
        b, s, c = decode_fcos(cls_logits[0], regression[0], centerness[0], tensor.shape[1:], params)
        full = (box.to_original(b), s, c)
        for setting, out in preds.items():
            parts = [full]
            if setting is not None and tiling_applies(image.size, card.input):
                parts.append(tile_detections(predictor.raw, image, card.input, params, setting))
            mb, ms, mc = merge_detections(parts, params) if len(parts) > 1 else full
            out.append(Detections(scores=ms, class_ids=mc, boxes=mb))
    return Scored(records, preds)


def recall_by_side(
    scored: Scored, setting: TilingSpec | None, thresholds: dict[str, float], predictor: Predictor
) -> tuple[np.ndarray, np.ndarray]:
    """Found and total ground-truth boxes per bucket of :data:`SIDES` (side on served input)."""
    card = predictor.card
    found, total = np.zeros(len(SIDES) - 1), np.zeros(len(SIDES) - 1)
    thr = np.array([thresholds.get(name, 0.5) for name in card.labels])
    for rec, det in zip(scored.records, scored.preds[setting], strict=True):
        if not len(rec.boxes):
            continue
        assert det.boxes is not None
        keep = det.scores >= thr[det.class_ids]
        boxes, classes = det.boxes[keep], det.class_ids[keep]
        w, h = rec.size_wh or _open(rec).size
        scale = min(card.input.width / w, card.input.height / h)
        gt = rec.boxes
        sides = np.sqrt((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])) * scale
        iou = box_iou(gt, boxes) if len(boxes) else np.zeros((len(gt), 0))
        same = classes[None, :] == rec.box_labels[:, None]
        hit = np.any((iou >= 0.5) & same, axis=1) if len(boxes) else np.zeros(len(gt), bool)
        bins = np.clip(np.searchsorted(SIDES, sides, side="right") - 1, 0, len(SIDES) - 2)
        np.add.at(total, bins, 1)
        np.add.at(found, bins, hit)
    return found, total


def latency(
    predictor: Predictor, records: list[ImageRecord], setting: TilingSpec | None, repeats: int
) -> dict[str, float]:
    """``Predictor.predict`` on ``records`` (medians): ms per frame, per 0.1 MP of frame and
    per 0.1 MP of network input (the whole frame's plus the tiles')."""
    predictor.card.tiling = setting
    per_frame, frame_mp, input_mp = [], [], []
    spec = predictor.card.input
    for rec in records:
        image = _open(rec)
        predictor.predict(image)  # warm-up (allocations for this size)
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            predictor.predict(image)
            runs.append((time.perf_counter() - t0) * 1000)
        per_frame.append(statistics.median(runs))
        frame_mp.append(image.size[0] * image.size[1] / 1e5)
        pixels = spec.width * spec.height
        if setting is not None and tiling_applies(image.size, spec):
            tiles = tile_grid(image.size, setting)
            tspec = tile_input_spec(spec, image.size, tiles, setting)
            pixels += len(tiles) * tspec.width * tspec.height
        input_mp.append(pixels / 1e5)
    return {
        "ms": statistics.median(per_frame),
        "ms_frame_mp": statistics.median(m / f for m, f in zip(per_frame, frame_mp, strict=True)),
        "ms_input_mp": statistics.median(m / i for m, i in zip(per_frame, input_mp, strict=True)),
    }


def _name(setting: TilingSpec | None) -> str:
    if setting is None:
        return "off"
    cols, rows = setting.grid
    return f"{cols}×{rows}, overlap {setting.overlap:g}, scale {setting.scale:g}"


def rows(folder: Path, latency_images: int, repeats: int) -> list[str]:
    predictor = Predictor.load(folder, threads=2)
    card = predictor.card
    own = card.tiling
    settings: list[TilingSpec | None] = [None]
    for s in (own, *TILING_CANDIDATES):
        if s is not None and s not in settings:
            settings.append(s)
    splits = split_records(folder, ("validation", "test"))
    predictor.card.tiling = None  # the scoring below applies each setting itself
    val = score_split(predictor, splits["validation"], settings)
    test = score_split(predictor, splits["test"], settings)
    val_metrics = {s: detection_metrics(val.records, val.preds[s], card.labels) for s in settings}
    val_scores = {s: selection_score(m.per_label) for s, m in val_metrics.items()}
    chosen = choose_tiling(val_scores[None], {s: v for s, v in val_scores.items() if s})
    large = sorted(test.records, key=lambda r: -(r.size_wh[0] * r.size_wh[1] if r.size_wh else 0))[
        :latency_images
    ]
    out = []
    for s in settings:
        thresholds = val_metrics[s].best_thresholds
        m = detection_metrics(test.records, test.preds[s], card.labels, thresholds=thresholds)
        per_label = " · ".join(
            f"{name} {lm.at_threshold.f1:.3f} / {lm.ap50:.3f}" for name, lm in m.per_label.items()
        )
        found, total = recall_by_side(test, s, thresholds, predictor)
        recall = " · ".join(
            f"{lo}–{hi if hi < 10_000 else '∞'}: {f / t:.2f} (n={int(t)})"
            for lo, hi, f, t in zip(SIDES[:-1], SIDES[1:], found, total, strict=True)
            if t
        )
        lat = latency(predictor, large, s, repeats)
        marks = (" **chosen**" if s == chosen else "") + (" (card)" if s == own and s else "")
        out.append(
            f"| {folder.name} | {_name(s)}{marks} | {val_scores[s]:.4f} | {m.f1:.3f} | "
            f"{m.map50:.3f} | {per_label} | {recall} | {lat['ms']:.0f} | "
            f"{lat['ms_frame_mp']:.1f} | {lat['ms_input_mp']:.1f} |"
        )
    return out


HEADER = [
    "# Sliced inference (bench/tiling.py)",
    "",
    "Each stored detector's validation and test images, the whole frame once through ONNX "
    "Runtime (2 threads) and each setting's tiles once, merged as served (class-wise NMS at "
    "the card's IoU). Validation score: AP@0.5 weighted by boxes, what the training run's "
    "choice compares (kept only if it beats off by TILING_MARGIN). Test F1 / mAP@0.5 at each "
    "label's best-F1 threshold on validation at that setting. Recall by box side on the served "
    "input, all labels, at those thresholds. Latency: `Predictor.predict` on the largest test "
    "frames, median ms per frame, per 0.1 MP of frame and per 0.1 MP of network input "
    "(goal: ≤ 30 ms per 0.1 MP).",
    "",
    "| model | tiling | validation score | test F1 | test mAP@0.5 | per label (F1 / AP@0.5) "
    "| recall by box side (served px) | ms / frame | ms per 0.1 MP frame "
    "| ms per 0.1 MP input |",
    "|---|---|---|---|---|---|---|---|---|---|",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--latency-images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    lines = list(HEADER)
    for folder in args.models:
        new = rows(folder, args.latency_images, args.repeats)
        print("\n".join(new), flush=True)
        lines += new
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
