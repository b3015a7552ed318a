"""The training loop: warm-up + cosine LR, periodic validation, best-model keeping, checkpoints.

With ``optim.ema`` the loop also keeps an exponential moving average of the weights
(``torch.optim.swa_utils.AveragedModel``); validation, the best model and the result are then
the average's.

Checkpoints (``checkpoints/last.pt``) hold the trainable weights, the optimizer, every RNG
state and the history, written after each validation and on Ctrl-C; ``--resume`` continues
from there. With the same data, seed, step count and thread count on CPU, the result is the
same whether or not the run was interrupted (the feature cache is rebuilt from the same seeds).
"""

from __future__ import annotations

import copy
import csv
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from customlabels.errors import ConfigError
from customlabels.training.adapter import TaskAdapter, using_module
from customlabels.training.config import OptimConfig

__all__ = ["LoopResult", "lr_at", "run_loop"]

log = logging.getLogger(__name__)

CHECKPOINT = "last.pt"
CSV_FIELDS = [
    "step",
    "elapsed_s",
    "lr",
    "loss",
    "classification",
    "bbox_regression",
    "bbox_ctrness",
    "val_score",
    "val_map50",
]


@dataclass
class LoopResult:
    """What the loop hands back: the best weights on validation and the history."""

    steps: int
    best_step: int
    best_score: float
    best_state: dict[str, torch.Tensor]
    best_eval: dict[str, Any]
    thresholds: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def lr_at(step: int, total: int, o: OptimConfig) -> float:
    """Linear warm-up over ``warmup_steps`` then cosine decay to ``lr × final_lr_fraction``."""
    warm = min(o.warmup_steps, max(1, total // 5))
    if step < warm:
        return o.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    floor = o.lr * o.final_lr_fraction
    return floor + (o.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def ema_decay(fraction: float, total_steps: int) -> float:
    """The per-step decay of an average over about ``fraction`` of ``total_steps`` steps."""
    return 1.0 - 1.0 / max(1.0, fraction * total_steps)


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a SIGKILL mid-write leaves the previous checkpoint intact


def load_checkpoint(ckpt_dir: Path) -> dict[str, Any] | None:
    path = ckpt_dir / CHECKPOINT
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def run_loop(
    task: TaskAdapter,
    optim: OptimConfig,
    total_steps: int,
    eval_every: int,
    seed: int,
    out_dir: Path,
    resume: dict[str, Any] | None = None,
    deadline: float | None = None,
    progress: bool = True,
    step_cap: int | None = None,
    min_steps: int = 1,
) -> LoopResult:
    """Train ``task.module`` for ``total_steps`` steps (or until ``deadline``, a
    ``time.monotonic()`` value, when steps came from a time budget; never fewer than
    ``min_steps`` then)."""
    from tqdm import tqdm

    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    module = task.module
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(task.param_groups(), lr=optim.lr, weight_decay=optim.weight_decay)
    rng = np.random.default_rng([seed, 7])
    step, history, elapsed0 = 0, [], 0.0
    best: dict[str, Any] = {"score": -math.inf, "step": 0, "state": None, "eval": {}, "thr": {}}
    if resume is not None:
        module.load_state_dict(resume["module"])
        opt.load_state_dict(resume["optimizer"])
        rng.bit_generator.state = resume["numpy_rng"]
        torch.set_rng_state(resume["torch_rng"])
        step, history, elapsed0, best = (
            resume["step"],
            resume["history"],
            resume["elapsed_s"],
            resume["best"],
        )
        log.info("resumed at step %d of %d", step, total_steps)
    averaged: AveragedModel | None = None
    if optim.ema:
        averaged = AveragedModel(
            module,
            multi_avg_fn=get_ema_multi_avg_fn(ema_decay(optim.ema, total_steps)),
            use_buffers=True,
        )
        if resume is not None and resume.get("ema") is not None:
            averaged.load_state_dict(resume["ema"])
    kept: nn.ModuleDict = averaged.module if averaged is not None else module  # type: ignore[assignment]

    csv_path = out_dir / "metrics.csv"
    if resume is None or not csv_path.exists():
        with csv_path.open("w", newline="") as fh:
            csv.DictWriter(fh, CSV_FIELDS).writeheader()

    def checkpoint() -> None:
        _save(
            ckpt_dir / CHECKPOINT,
            {
                "module": module.state_dict(),
                "optimizer": opt.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "history": history,
                "elapsed_s": elapsed0 + time.monotonic() - t0,
                "best": best,
                "total_steps": total_steps,
                "ema": averaged.state_dict() if averaged is not None else None,
            },
        )

    def record(row: dict[str, Any]) -> None:
        history.append(row)
        with csv_path.open("a", newline="") as fh:
            csv.DictWriter(fh, CSV_FIELDS, extrasaction="ignore").writerow(row)

    ckpt_every = max(1, min(eval_every, 50))
    module.train()
    t0 = time.monotonic()
    first_step, retimed = step, resume is not None
    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
        leave=True,
    )
    running: dict[str, list[float]] = {}
    last_map = float("nan")
    try:
        while step < total_steps:
            lr = lr_at(step, total_steps, optim)
            for group in opt.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            losses = task.losses(rng)
            loss = sum(losses.values())
            assert isinstance(loss, torch.Tensor)
            if not torch.isfinite(loss):
                raise ConfigError(
                    f"optim.lr: training diverged (non-finite loss at step {step}); "
                    f"expected a smaller learning rate than {optim.lr}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if optim.clip_grad:
                torch.nn.utils.clip_grad_norm_(params, optim.clip_grad)
            opt.step()
            if averaged is not None:
                averaged.update_parameters(module)
            step += 1
            for k, v in losses.items():
                running.setdefault(k, []).append(float(v.detach()))
            running.setdefault("loss", []).append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", val_map=f"{last_map:.3f}")
            out_of_time = deadline is not None and step >= min_steps and time.monotonic() > deadline
            if step % eval_every == 0 or step == total_steps or out_of_time:
                t_eval = time.monotonic()
                with using_module(task, kept):
                    ev = task.evaluate()
                t_eval = time.monotonic() - t_eval
                if deadline is not None and not retimed and step < total_steps:
                    # Budget runs: re-plan the step count once from the speed actually seen
                    # (the up-front measurement is noisy on a shared CPU); the cosine schedule
                    # follows the new total.
                    retimed = True
                    per_step = (time.monotonic() - t0 - t_eval) / max(1, step - first_step)
                    evals_left = (math.ceil(total_steps / eval_every) - 1) * t_eval
                    left = deadline - time.monotonic() - evals_left
                    planned = total_steps
                    total_steps = max(step + 1, step + int(left / max(per_step, 1e-3)))
                    total_steps = max(total_steps, min(planned, min_steps))
                    if step_cap is not None:
                        total_steps = min(total_steps, max(step + 1, step_cap))
                    eval_every = max(1, math.ceil(total_steps * eval_every / planned))
                    if averaged is not None:
                        averaged.multi_avg_fn = get_ema_multi_avg_fn(
                            ema_decay(optim.ema, total_steps)
                        )
                    bar.total = total_steps
                    log.info("re-planned: %.3f s per step -> %d steps", per_step, total_steps)
                last_map = float(ev.summary.get("map50", ev.score))
                row = {
                    "step": step,
                    "elapsed_s": round(elapsed0 + time.monotonic() - t0, 2),
                    "lr": lr,
                    "val_score": ev.score,
                    "val_map50": last_map,
                    **{k: float(np.mean(v)) for k, v in running.items()},
                }
                running = {}
                record(row)
                if ev.score >= best["score"]:
                    best = {
                        "score": ev.score,
                        "step": step,
                        "eval": ev.summary,
                        "thr": ev.thresholds,
                        "state": copy.deepcopy(kept.state_dict()),
                    }
                log.info(
                    "step %d/%d loss %.4f val score %.4f mAP@0.5 %.4f (best %.4f @ %d)",
                    step,
                    total_steps,
                    row.get("loss", math.nan),
                    ev.score,
                    last_map,
                    best["score"],
                    best["step"],
                )
                checkpoint()
            if out_of_time:
                log.info("time budget reached at step %d of %d", step, total_steps)
                break
            elif step % ckpt_every == 0:
                checkpoint()
    except KeyboardInterrupt:
        # The last checkpoint sits on a step boundary; a mid-step state would not resume exactly.
        log.warning("interrupted at step %d; continue with --resume", step)
        raise
    finally:
        bar.close()
    return LoopResult(
        steps=step,
        best_step=best["step"],
        best_score=best["score"],
        best_state=best["state"] or copy.deepcopy(kept.state_dict()),
        best_eval=best["eval"],
        thresholds=best["thr"],
        history=history,
        seconds=elapsed0 + time.monotonic() - t0,
    )
