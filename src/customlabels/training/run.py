"""``train()``: manifest in, model version folder out (``docs/model-folder.md``).

The driver, step by step (each step lives in its own module):

1. splits (``splits.py``): test = ``--test`` or a group-aware 20 % split; validation carved from
   the training part, never from the test set;
2. the automatic recipe (``recipe.py``) resolves what the user left open;
3. device and threads (``resources.py``), the backbone (``backbone.py``);
4. the task's adapter, looked up in the registry (``tasks.py``), caches backbone features of
   augmented views; how many, and how many steps follow, come from the config or the time
   budget (``budget.py``);
5. the training loop with validation-based model selection (``loop.py``), then the decoding
   chosen on validation;
6. ONNX export checked against PyTorch (``export.py``);
7. ``model.json`` with test metrics through the served path, and the curves (``outputs.py``).

The config given is never changed: each step that settles a value makes a resolved copy, and
the last one is written to ``config.yaml`` (what ``--config DIR/config.yaml`` reproduces).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from customlabels.core.dataset import Dataset, Task
from customlabels.core.model_card import InputSpec
from customlabels.datasets.advice import data_advice
from customlabels.formats.refs import Fetch
from customlabels.training.adapter import TaskAdapter, TaskInputs
from customlabels.training.backbone import Backbone, create_backbone
from customlabels.training.budget import plan_steps, views_to_cache
from customlabels.training.calibrate import fit_calibration
from customlabels.training.config import TrainConfig, load_config, save_config
from customlabels.training.export import export_task
from customlabels.training.loop import LoopResult, load_checkpoint, run_loop
from customlabels.training.outputs import RunFacts, now_iso, plot_history, write_card
from customlabels.training.recipe import auto_config, is_set, summarize
from customlabels.training.resources import pick_device, torch_threads
from customlabels.training.splits import make_splits
from customlabels.training.tasks import adapter_for

__all__ = ["CONFIG_NAME", "train", "train_dataset"]

log = logging.getLogger("customlabels.training")

CONFIG_NAME = "config.yaml"


def train(
    manifest: Path | str,
    out_dir: Path | str,
    test_manifest: Path | str | None = None,
    time_budget_s: float | None = None,
    config: Path | str | TrainConfig | None = None,
    seed: int | None = None,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    bucket_map: Mapping[str, Path | str] | None = None,
    fetch: Fetch | None = None,
) -> Path:
    """Train a detector or classifier from a Ground Truth manifest; returns ``out_dir``.

    Args:
        manifest: training manifest (the test split is carved from it without ``test_manifest``).
        time_budget_s: seconds for the whole run (overrides the config's ``time_budget_s``).
        config: a ``config.yaml`` path (any subset of fields) or a :class:`TrainConfig`.
        seed, device: override the config's.
        resume: continue from ``out_dir/checkpoints/last.pt`` (same data and config).
        bucket_map, fetch: where ``s3://`` refs are read (see ``load_ground_truth``); the
            caller that knows the store hands ``fetch`` in (the CLI: ``S3Fetch``).
    """
    from customlabels.formats.groundtruth import load_ground_truth

    dataset = load_ground_truth(Path(manifest), bucket_map, fetch)
    test = load_ground_truth(Path(test_manifest), bucket_map, fetch) if test_manifest else None
    if isinstance(config, TrainConfig):
        cfg, user = config, config.to_dict()
    elif config is not None:
        cfg, user = load_config(Path(config))
    else:
        cfg, user = TrainConfig(), {}
    overrides: dict[str, Any] = {}
    if time_budget_s is not None:
        overrides["time_budget_s"] = float(time_budget_s)
    if seed is not None:
        overrides["seed"] = int(seed)
    if device is not None:
        overrides["device"] = device
    return train_dataset(
        dataset,
        Path(out_dir),
        test=test,
        config=cfg.resolved(overrides, source="arguments"),
        user=user,
        resume=resume,
        progress=progress,
    )


def train_dataset(
    dataset: Dataset,
    out_dir: Path,
    test: Dataset | None = None,
    config: TrainConfig | None = None,
    user: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
    validation: Dataset | None = None,
) -> Path:
    """Train on an in-memory :class:`Dataset` (see :func:`train`); returns ``out_dir``.

    ``user``: the fields the user set explicitly (the recipe leaves them alone).
    ``validation``: an explicit validation set (else carved from ``dataset``).
    ``resume``: continue from ``out_dir/checkpoints`` with the recipe in ``out_dir/config.yaml``.
    """
    t_start, started_at = time.monotonic(), now_iso()
    out_dir.mkdir(parents=True, exist_ok=True)
    with _logging_to(out_dir / "train.log"):
        cfg, user = config or TrainConfig(), user or {}
        checkpoint = load_checkpoint(out_dir / "checkpoints") if resume else None
        if resume and checkpoint is None:
            log.warning("--resume: no checkpoint in %s; starting afresh", out_dir / "checkpoints")
        if checkpoint is not None:  # the recipe actually used is the one to continue with
            cfg, _ = load_config(out_dir / CONFIG_NAME)
            user = cfg.to_dict()

        splits = make_splits(
            dataset,
            test,
            validation,
            cfg.eval,
            cfg.seed,
            grow_validation=not is_set(user, "eval.validation_fraction"),
        )
        advice = data_advice(
            splits.dataset.labels.names,
            splits.named(),
            detection=splits.dataset.task == Task.OBJECT_LOCALIZATION,
        )
        for line in advice.format_table().splitlines():
            log.info("data: %s", line)
        cfg, notes = auto_config(cfg, user, summarize(splits.train, splits.dataset.task))
        for note in notes:
            log.info("recipe: %s", note)
        device, backbone = _start(cfg)
        adapter = adapter_for(cfg.task, cfg.model.head)
        spec = _input_spec(cfg, adapter, backbone)
        log.info(
            "splits: %d train, %d validation, %d test images; task %s; device %s",
            len(splits.train),
            len(splits.validation),
            len(splits.test),
            cfg.task,
            device,
        )

        t0 = time.monotonic()
        cfg, cache_deadline = views_to_cache(cfg, user, len(splits.train), t_start)
        multi_label = _multi_label(splits.dataset)
        task, views = adapter.build(
            TaskInputs(
                cfg,
                backbone,
                splits.dataset.labels.names,
                splits.train,
                splits.validation,
                spec,
                device,
                multi_label,
                cache_deadline,
            )
        )
        per_image = views / max(1, len(splits.train))
        cfg = cfg.resolved({"augment.views_per_image": max(1, math.ceil(per_image))})
        t_cache = time.monotonic() - t0
        log.info("feature cache: %d views (%.2f per image) in %.0f s", views, per_image, t_cache)

        resumed_total = int(checkpoint.get("total_steps") or 0) if checkpoint else None
        cfg, plan = plan_steps(cfg, task, views, t_start, resumed_total)
        save_config(cfg, out_dir / CONFIG_NAME)
        result = run_loop(
            task,
            cfg.optim,
            plan.steps,
            plan.every,
            cfg.seed,
            out_dir,
            resume=checkpoint,
            deadline=plan.deadline,
            progress=progress,
            step_cap=plan.step_cap,
            min_steps=plan.min_steps,
        )
        cfg, result = _settle_decoding(cfg, task, result)
        # Calibrated confidence (raw -> P(true positive)) and the thresholds on its scale.
        calibration = fit_calibration(
            splits.validation,
            task.predict_cached(),
            splits.dataset.labels.names,
            detection=splits.dataset.task == Task.OBJECT_LOCALIZATION,
            multi_label=multi_label,
        )
        result.thresholds, result.best_eval = calibration.thresholds, calibration.summary
        # Record what was used: steps re-planned from the speed seen or cut by the budget, NMS.
        save_config(cfg, out_dir / CONFIG_NAME)

        facts = RunFacts(
            t_start=t_start,
            cache_seconds=t_cache,
            views=views,
            views_per_image=per_image,
            device=str(device),
            threads=torch.get_num_threads(),
            started_at=started_at,
            onnx_max_abs_diff=export_task(task, out_dir, spec),
        )
        write_card(
            out_dir,
            task=task,
            spec=spec,
            config=cfg,
            splits=splits,
            result=result,
            facts=facts,
            multi_label=multi_label,
            advice=advice.to_dict(),
            calibration=calibration.card,
        )
        plot_history(out_dir, result.history)
        log.info("model folder ready: %s", out_dir)
        return out_dir


def _start(cfg: TrainConfig) -> tuple[torch.device, Backbone]:
    """Seed torch, set its threads, pick the device and load the pretrained backbone on it."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(torch_threads(cfg.threads))
    log.info("torch threads: %d", torch.get_num_threads())
    device = pick_device(cfg.device)
    backbone = create_backbone(cfg.model.backbone).to(device)
    return device, backbone.to(memory_format=torch.channels_last)


def _input_spec(cfg: TrainConfig, adapter: type[TaskAdapter], backbone: Backbone) -> InputSpec:
    """The served input (``model.json`` ``input``): the task's resize, the backbone's scaling."""
    return InputSpec(
        width=cfg.input.width,
        height=cfg.input.height,
        resize=adapter.resize,
        mean=list(backbone.spec.mean),
        std=list(backbone.spec.std),
        pad_value=backbone.spec.mean[0],  # padding normalizes to 0
    )


def _settle_decoding(
    cfg: TrainConfig, task: TaskAdapter, result: LoopResult
) -> tuple[TrainConfig, LoopResult]:
    """Load the best weights and let the task choose its decoding on validation; thresholds and
    validation metrics are then those at the choice, and the config records it."""
    task.module.load_state_dict(result.best_state)
    log.info("best validation score %.4f at step %d", result.best_score, result.best_step)
    tuned = task.tune_decoding()
    if tuned is None:
        return cfg, result
    result.best_eval, result.thresholds = tuned.summary, tuned.thresholds
    return cfg.resolved(task.decoding_settings()), result


def _multi_label(dataset: Dataset) -> bool:
    return any(len(set(im.image_labels)) > 1 for im in dataset.images)


@contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """Copy the package's log records (INFO and up) to ``path`` for the duration."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("customlabels")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
