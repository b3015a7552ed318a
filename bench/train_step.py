"""Where a detector training step's time goes: FPN + head alone (cached features) against
fine-tuning the backbone's last 1 or 2 stages over cached maps, and the whole backbone; and what
caching one augmented view costs, whole or cut to a 512-px window (12 bee frames, 1920×1080,
served at 1280×736, scale jitter 0.7–1.8).

    .venv/bin/python bench/train_step.py [--repeats 15] [--threads 2] [--backbone NAME] [--compile]
    .venv/bin/python bench/train_step.py --shapes   # batch and crop shape of the default step

One batch of eight 320² crops (random pixels, two boxes each), AdamW; median of ``--repeats``
steps after 3 warm-up steps, and the ratio to the head-only step measured in the same process.
Results: ``bench/results/training-step.md`` (``training-step-NAME.md`` for another backbone than
the default, e.g. ``--backbone mobilenetv2-ssd-coco``). ``--shapes`` times the default step
(stride-16/32 stages fine-tuned) at other batch sizes and crop sides instead, per crop pixel
against eight 320² crops: ``bench/results/training-step-shapes.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from customlabels.training.backbone import create_backbone
from customlabels.training.config import BackboneName
from customlabels.training.detector import FCOSCriterion, FCOSNeckHead

RESULTS = Path(__file__).resolve().parent / "results" / "training-step.md"
BEES = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "bees" / "output.manifest"
MODES = {"head only (cached C3–C5)": 0, "+ stride-32 stage": 1, "+ stride-16/32 stages": 2}
# (batch, crop side): the default's eight 320² crops first, then the same pixels cut otherwise,
# then more and fewer pixels per step
SHAPES = [(8, 320), (16, 224), (4, 448), (2, 640), (16, 320), (4, 320), (8, 256), (8, 384)]


def step_times(
    mode: str,
    repeats: int,
    backbone_name: str,
    batch: int = 8,
    side: int = 320,
    compiled: bool = False,
) -> tuple[list[float], float]:
    """Seconds of each measured step, and of the warm-up (where ``torch.compile`` compiles)."""
    torch.manual_seed(0)
    backbone = create_backbone(backbone_name)
    neck_head = FCOSNeckHead(backbone.spec.channels, 4, 64, 2)
    criterion = FCOSCriterion(neck_head, backbone.spec.strides)
    x = torch.randn(batch, 3, side, side).contiguous(memory_format=torch.channels_last)
    box = torch.tensor([[10.0, 10.0, 50.0, 50.0], [100.0, 100.0, 140.0, 150.0]])
    targets = [{"boxes": box, "labels": torch.tensor([0, 1])} for _ in range(batch)]
    stages = MODES.get(mode)
    tail = backbone.upper_blocks(stages) if stages is not None else None
    with torch.no_grad():
        cached = backbone.features(x, 3 - (stages or 0))
    trainable = list(neck_head.parameters())
    if tail is not None:
        trainable += list(tail.parameters())
    else:
        trainable += list(backbone.parameters())
    for p in trainable:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(trainable, lr=1e-5)
    if compiled:
        # Inductor compiles the trained modules (FPN + head, and the fine-tuned stages); the
        # loss's FCOS matching stays eager (data-dependent shapes).
        neck_head = torch.compile(neck_head)  # type: ignore[assignment]
        if tail is not None:
            tail = torch.nn.ModuleList(torch.compile(block) for block in tail)

    def step() -> None:
        if tail is None:
            feats = backbone.features(x)
        elif len(tail):
            feats = cached + backbone.continue_features(cached[-1], len(cached) - 1, tail)
        else:
            feats = cached
        loss = sum(criterion(neck_head(feats), targets, (side, side), feats).values())
        opt.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        opt.step()

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    warmup = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times, warmup


def view_times(window: int, levels: int, backbone_name: str) -> list[float]:
    from customlabels.formats.groundtruth import load_ground_truth
    from customlabels.training.config import AugmentConfig, InputConfig
    from customlabels.training.views import make_view

    records = [r for r in load_ground_truth(BEES).images if r.size_wh == (1920, 1080)][:12]
    backbone = create_backbone(backbone_name)
    inp = InputConfig(width=1280, height=736, crop=320, view_window=window)
    aug = AugmentConfig(scale_min=0.7, scale_max=1.8)
    times = []
    for i, rec in enumerate(records):
        t = time.perf_counter()
        make_view(rec, i, 1 + i % 3, backbone, inp, aug, 0, torch.device("cpu"), levels)
        times.append(time.perf_counter() - t)
    return times


def shapes(repeats: int, threads: int, backbone: str) -> None:
    """The default step's cost per crop pixel at each of :data:`SHAPES`."""
    rows = []
    for batch, side in SHAPES:
        times, _ = step_times("+ stride-16/32 stages", repeats, backbone, batch, side)
        rows.append((batch, side, statistics.median(times)))
    per = [t / (b * s * s / 1e5) for b, s, t in rows]
    lines = [
        "# Detector training step: batch and crop shape (bench/train_step.py --shapes)",
        "",
        f"Backbone {backbone}, stride-16/32 stages fine-tuned over cached maps (the default "
        f"step); {os.cpu_count()} CPU cores, torch {torch.__version__}, {threads} threads; "
        f"median of {repeats} steps; × = seconds per crop pixel against eight 320² crops, "
        "measured in the same process.",
        "",
        "| batch × crop | s per step | ms per 0.1 MP of crop | × 8×320² per pixel |",
        "|---|---:|---:|---:|",
        *(
            f"| {b} × {s}² | {t:.3f} | {1000 * q:.1f} | {q / per[0]:.2f} |"
            for (b, s, t), q in zip(rows, per, strict=True)
        ),
    ]
    out = RESULTS.with_name("training-step-shapes.md")
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile'd (inductor) steps"
    )
    parser.add_argument(
        "--backbone", choices=list(BackboneName), default=BackboneName.EFFICIENTNET_LITE0.value
    )
    parser.add_argument(
        "--shapes", action="store_true", help="time the default step at other batch/crop shapes"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.shapes:
        shapes(args.repeats, args.threads, args.backbone)
        return
    rows = []
    for mode in [*MODES, "whole backbone"]:
        times, warmup = step_times(mode, args.repeats, args.backbone)
        rows.append((mode, statistics.median(times), warmup))
    if args.compile:
        for mode in MODES:
            times, warmup = step_times(mode, args.repeats, args.backbone, compiled=True)
            rows.append((f"{mode}, torch.compile", statistics.median(times), warmup))
    base = rows[0][1]
    lines = [
        "# Detector training step (bench/train_step.py)",
        "",
        f"Backbone {args.backbone}; {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{args.threads} threads; a batch "
        f"of eight 320² crops, AdamW; median of {args.repeats} steps.",
        "",
        "| trained | s per step | × head only | 3 warm-up steps, s |",
        "|---|---:|---:|---:|",
        *(f"| {mode} | {t:.3f} | {t / base:.2f} | {w:.1f} |" for mode, t, w in rows),
    ]
    if BEES.exists():
        views = [
            (f"{'whole view' if w == 0 else f'{w}-px window'}, cached up to {name}", w, levels)
            for w in (0, 512)
            for levels, name in ((3, "stride 32"), (1, "stride 8"))
        ]
        cost = [
            (label, statistics.median(view_times(w, lv, args.backbone))) for label, w, lv in views
        ]
        lines += [
            "",
            "Caching one augmented view of a 1920×1080 bee frame (decode, augment, backbone; "
            "median over 12 frames):",
            "",
            "| view | s per view | × window, same levels |",
            "|---|---:|---:|",
            *(
                f"| {label} | {t:.3f} | {t / cost[i % 2 + 2][1]:.1f} |"
                for i, (label, t) in enumerate(cost)
            ),
        ]
    out = RESULTS
    if args.backbone != BackboneName.EFFICIENTNET_LITE0:
        out = RESULTS.with_name(f"training-step-{args.backbone}.md")
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
