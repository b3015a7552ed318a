"""``train()``: manifest in, model version folder out (``docs/model-folder.md``).

Steps: load and split (test: ``--test`` or the group-aware 20 % split; validation carved from
the training part, never the test set) -> automatic recipe -> cached backbone features of
augmented views -> training loop with validation-based model selection -> ONNX export checked
against PyTorch -> per-label thresholds (best F1 on validation) -> test metrics through the
served path (ONNX Runtime + numpy decoding) -> ``model.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Task
from customlabels.core.detections import Detections
from customlabels.datasets.advice import data_advice, validation_fraction
from customlabels.errors import ConfigError, DatasetError
from customlabels.inference.model_card import ONNX_NAME, InputSpec, ModelCard
from customlabels.training.backbone import create_backbone
from customlabels.training.calibrate import fit_calibration
from customlabels.training.config import TrainConfig, load_config, save_config
from customlabels.training.export import check_onnx, export_onnx
from customlabels.training.loop import load_checkpoint, run_loop
from customlabels.training.recipe import CACHE_SHARE, auto_config, is_set, max_views, summarize
from customlabels.training.tasks import TASKS, TaskAdapter
from customlabels.training.views import (
    PAD_PIXEL,
    build_views,
    pooled_views,
    repeat_factors,
    validation_features,
)

__all__ = ["train", "train_dataset"]

log = logging.getLogger("customlabels.training")

MIN_STEPS = 100  # a budget run trains at least this long, even past its budget


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
    s3_endpoint_url: str | None = None,
) -> Path:
    """Train a detector or classifier from a Ground Truth manifest; returns ``out_dir``.

    Args:
        manifest: training manifest (the test split is carved from it without ``test_manifest``).
        time_budget_s: seconds for the whole run (overrides the config's ``time_budget_s``).
        config: a ``config.yaml`` path (any subset of fields) or a :class:`TrainConfig`.
        seed, device: override the config's.
        resume: continue from ``out_dir/checkpoints/last.pt`` (same data and config).
        bucket_map, s3_endpoint_url: where ``s3://`` refs are read (see ``load_ground_truth``).
    """
    from customlabels.formats.groundtruth import load_ground_truth

    dataset = load_ground_truth(Path(manifest), bucket_map, s3_endpoint_url)
    test = (
        load_ground_truth(Path(test_manifest), bucket_map, s3_endpoint_url)
        if test_manifest
        else None
    )
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
    if overrides:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides})
    return train_dataset(
        dataset, Path(out_dir), test=test, config=cfg, user=user, resume=resume, progress=progress
    )


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: expected a CUDA device for 'cuda', found none")
    return torch.device(name)


def _threads(requested: int) -> int:
    """``threads: 0`` = the idle cores: on a busy machine, OpenMP threads that wait for each
    other cost more than they give (measured here: 2 threads 2.2× slower than 1 at load 6)."""
    if requested:
        return requested
    cores = os.cpu_count() or 1
    # A core counts as taken when at least 3/4 of it is busy: a short burst from another
    # process (a git command, a shell) must not halve the threads of a 15-minute run.
    return max(1, min(cores, cores - math.floor(_busy_cores(cores) + 0.25)))


def _busy_cores(cores: int, window_s: float = 1.0) -> float:
    """Cores busy right now: from ``/proc/stat`` over ``window_s`` (the load average lags by
    minutes: a test run that just ended still reads as load), else the 1-minute load."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(window_s)
        total1, idle1 = sample()
        return cores * (1 - (idle1 - idle0) / max(1, total1 - total0))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0


def _split(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    from customlabels.datasets.split import split_dataset

    return split_dataset(dataset, test_fraction=fraction, seed=seed)


def _relabel(test: Dataset, names: list[str]) -> Dataset:
    """Express a test set's label ids in the training label map (manifests number labels in
    the order they first appear, which may differ between two files)."""
    if test.labels.names == names:
        return test
    unknown = [n for n in test.labels.names if n not in names]
    if unknown:
        raise DatasetError(
            f"test manifest: labels {unknown} do not occur in the training manifest "
            f"(expected a subset of {names})"
        )
    index = np.array([names.index(n) for n in test.labels.names], dtype=np.int64)
    images = [
        dataclasses.replace(
            im,
            box_labels=index[im.box_labels] if len(im.box_labels) else im.box_labels,
            image_labels=[int(index[i]) for i in im.image_labels],
        )
        for im in test.images
    ]
    return Dataset(labels=LabelMap(names), images=images)


def _digest(records: Sequence[ImageRecord]) -> str:
    h = hashlib.sha256()
    for rec in records:
        h.update(rec.ref.encode())
        h.update(np.round(rec.boxes, 3).tobytes())
        h.update(rec.box_labels.tobytes())
        h.update(json.dumps(sorted(rec.image_labels)).encode())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("customlabels", "torch", "torchvision", "onnx", "onnxruntime", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "n/a"
    return out


def _attach_log(out_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(out_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("customlabels")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


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
    """Train on an in-memory :class:`Dataset` (see :func:`train`).

    ``user``: the fields the user set explicitly (the recipe leaves them alone).
    ``validation``: an explicit validation set (else carved from ``dataset``).
    """
    t_start = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = config or TrainConfig()
    user = user or {}
    handler = _attach_log(out_dir)
    try:
        checkpoint = load_checkpoint(out_dir / "checkpoints") if resume else None
        if resume and checkpoint is None:
            log.warning("--resume: no checkpoint in %s; starting afresh", out_dir / "checkpoints")
        if checkpoint is not None:
            # The recipe actually used is the one to continue with (config.yaml).
            cfg, user = load_config(out_dir / "config.yaml")
            user = cfg.to_dict()
        return _run(
            dataset, out_dir, test, validation, cfg, user, checkpoint, progress, t_start, started_at
        )
    finally:
        logging.getLogger("customlabels").removeHandler(handler)
        handler.close()


def _run(
    dataset: Dataset,
    out_dir: Path,
    test: Dataset | None,
    validation: Dataset | None,
    cfg: TrainConfig,
    user: dict[str, Any],
    checkpoint: dict[str, Any] | None,
    progress: bool,
    t_start: float,
    started_at: str,
) -> Path:
    labels = dataset.labels.names
    usable = [im for im in dataset.images if im.path is not None]
    if not usable:
        raise DatasetError("no usable training images (none with a local file)")
    dataset = dataset.subset(usable)
    test_given = test is not None
    if test is None:
        train_part, test = _split(dataset, cfg.eval.test_fraction, cfg.seed)
    else:
        train_part = dataset
        test = _relabel(test, dataset.labels.names)
    if validation is None:
        share = cfg.eval.validation_fraction  # grows with a separate test set (datasets/advice)
        if not is_set(user, "eval.validation_fraction"):
            share = validation_fraction(share, len(train_part), test_given)
        train_part, validation = _split(train_part, share, cfg.seed + 1)
    train_recs, val_recs, test_recs = train_part.images, validation.images, test.images
    splits = {"train": train_recs, "validation": val_recs, "test": test_recs}
    advice = data_advice(labels, splits, detection=dataset.task == Task.OBJECT_LOCALIZATION)
    for line in advice.format_table().splitlines():
        log.info("data: %s", line)
    if not train_recs or not val_recs:
        raise DatasetError(
            f"expected images for training and validation, got {len(train_recs)} and "
            f"{len(val_recs)}"
        )
    summary = summarize(train_recs, dataset.task)
    cfg, notes = auto_config(cfg, user, summary)
    for note in notes:
        log.info("recipe: %s", note)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(_threads(cfg.threads))
    log.info("torch threads: %d", torch.get_num_threads())
    device = _device(cfg.device)
    backbone = create_backbone(cfg.model.backbone).to(device)
    backbone = backbone.to(memory_format=torch.channels_last)
    detector = cfg.task == "detection"
    spec = InputSpec(
        width=cfg.input.width,
        height=cfg.input.height,
        resize="letterbox" if detector else "stretch",
        mean=list(backbone.spec.mean),
        std=list(backbone.spec.std),
        pad_value=PAD_PIXEL,
    )
    log.info(
        "splits: %d train, %d validation, %d test images; task %s; device %s",
        len(train_recs),
        len(val_recs),
        len(test_recs),
        cfg.task,
        device,
    )

    # Views: a fixed number (deterministic), or as many as a share of the budget allows.
    t0 = time.monotonic()
    budget_mode = cfg.optim.steps is None
    cache_deadline = None
    if budget_mode and not is_set(user, "augment.views_per_image"):
        cfg.augment.views_per_image = max_views(cfg, len(train_recs))
        cache_deadline = t_start + CACHE_SHARE * cfg.time_budget_s
    task, total_views = _build_task(
        cfg, backbone, labels, train_recs, val_recs, spec, device, dataset, cache_deadline
    )
    mean_views = total_views / max(1, len(train_recs))
    cfg.augment.views_per_image = math.ceil(mean_views)
    t_cache = time.monotonic() - t0
    log.info("feature cache: %d views (%.2f per image) in %.0f s", total_views, mean_views, t_cache)

    # Steps: fixed, or from the measured step and validation time.
    deadline = None
    n_evals = 8
    # A classifier head on cached features overfits long before a budget runs out: at most
    # 30 passes over the cached views.
    step_cap = None if detector else max(200, 30 * total_views // cfg.optim.batch_size)
    if cfg.optim.steps is None:
        t_step = _measure_step(task)
        t1 = time.monotonic()
        task.evaluate()
        t_eval = time.monotonic() - t1
        # The budget covers caching, training and validation (with the choice of NMS IoU after
        # training: about two validations); export and the test-set scoring come after it
        # (their time is in model.json "training.seconds").
        reserve = 10.0 + (2 * t_eval if detector and cfg.eval.nms_iou is None else 0.0)
        left = cfg.time_budget_s - (time.monotonic() - t_start) - reserve
        # Validate up to 8 times, spending at most ~15 % of the training time on it.
        n_evals = max(2, min(8, int(0.15 * left / max(t_eval, 1e-3))))
        left -= n_evals * t_eval
        cfg.optim.steps = max(MIN_STEPS, int(left / t_step))
        if step_cap is not None:
            cfg.optim.steps = min(cfg.optim.steps, step_cap)
        deadline = t_start + cfg.time_budget_s - reserve
        log.info(
            "step %.3f s, validation %.1f s -> %d steps in the budget",
            t_step,
            t_eval,
            cfg.optim.steps,
        )
    total = cfg.optim.steps
    if checkpoint is not None and checkpoint.get("total_steps"):
        total = int(checkpoint["total_steps"])
        cfg.optim.steps = total
    save_config(cfg, out_dir / "config.yaml")
    if not cfg.eval.every and deadline is not None:
        every = max(1, math.ceil(total / n_evals))
    else:
        every = cfg.eval.every or max(1, math.ceil(total / 8))
    result = run_loop(
        task,
        cfg.optim,
        total,
        every,
        cfg.seed,
        out_dir,
        resume=checkpoint,
        deadline=deadline,
        progress=progress,
        step_cap=step_cap,
        min_steps=MIN_STEPS if deadline is not None else 1,
    )
    task.module.load_state_dict(result.best_state)
    log.info("best validation score %.4f at step %d", result.best_score, result.best_step)
    tuned = task.tune_decoding()
    if tuned is not None:  # thresholds and validation metrics at the chosen decoding
        result.best_eval, result.thresholds = tuned.summary, tuned.thresholds
        cfg.eval.nms_iou = task.head_card()["nms_iou"]
    # Calibrated confidence (raw -> P(true positive)) and the thresholds on its scale.
    multi = _multi_label(dataset)
    preds = task.predict_cached()
    calibration = fit_calibration(val_recs, preds, labels, detection=detector, multi_label=multi)
    result.thresholds, result.best_eval = calibration.thresholds, calibration.summary
    # Record what was used: steps re-planned from the speed seen or cut by the budget, NMS IoU.
    save_config(cfg, out_dir / "config.yaml")

    export = task.export_module()
    onnx_path = out_dir / ONNX_NAME
    outputs = task.head_card()["outputs"]
    export_onnx(export, onnx_path, outputs, (spec.height, spec.width))
    diff = check_onnx(export, onnx_path, (spec.height, spec.width))
    log.info("exported %s (ONNX vs PyTorch max diff %.1e)", onnx_path, diff)

    card = ModelCard(
        task=Task.OBJECT_LOCALIZATION if detector else Task.IMAGE_LEVEL_LABELS,
        labels=labels,
        input=spec,
        head=task.head_card(),
        thresholds=result.thresholds or dict.fromkeys(labels, 0.5),
        multi_label=_multi_label(dataset),
        metrics={"validation": result.best_eval},
        training={
            "seconds": round(time.monotonic() - t_start, 1),
            "cache_seconds": round(t_cache, 1),
            "steps": result.steps,
            "best_step": result.best_step,
            "views_per_image": round(mean_views, 2),
            "views": total_views,
            "device": str(device),
            "seed": cfg.seed,
            "threads": torch.get_num_threads(),
            "started_at": started_at,
            "finished_at": "",
            "onnx_max_abs_diff": diff,
        },
        recipe=cfg.to_dict(),
        dataset={
            "sha256": {
                "train": _digest(train_recs),
                "validation": _digest(val_recs),
                "test": _digest(test_recs),
            },
            "advice": advice.to_dict(),
            "images": {
                "train": [r.ref for r in train_recs],
                "validation": [r.ref for r in val_recs],
                "test": [r.ref for r in test_recs],
            },
        },
        versions=_versions(),
        version_name=out_dir.name,
        calibration=calibration.card,
    )
    card.save(out_dir)
    if test_recs:
        card.metrics["test"] = _test_metrics(out_dir, test_recs, labels, card)
    card.training["seconds"] = round(time.monotonic() - t_start, 1)
    card.training["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    card.save(out_dir)
    _plot(out_dir, result.history)
    log.info("model folder ready: %s", out_dir)
    return out_dir


def _multi_label(dataset: Dataset) -> bool:
    return any(len(set(im.image_labels)) > 1 for im in dataset.images)


def _build_task(
    cfg: TrainConfig,
    backbone: Any,
    labels: list[str],
    train_recs: list[ImageRecord],
    val_recs: list[ImageRecord],
    spec: InputSpec,
    device: torch.device,
    dataset: Dataset,
    deadline: float | None,
) -> tuple[TaskAdapter, int]:
    n = cfg.augment.views_per_image
    if cfg.task == "detection":
        levels = 3 - cfg.model.finetune_stages
        views = build_views(
            train_recs,
            backbone,
            cfg.input,
            cfg.augment,
            cfg.seed,
            n,
            device,
            deadline,
            levels=levels,
        )
        val_feats = validation_features(val_recs, backbone, spec, device, levels)
        task = TASKS["detection"](
            cfg, backbone, labels, views, train_recs, val_recs, val_feats, spec, device
        )
        return task, len(views)
    levels = 3 - cfg.model.finetune_stages
    pooled, index = pooled_views(
        train_recs,
        backbone,
        spec,
        cfg.augment,
        cfg.seed,
        n,
        device,
        deadline=deadline,
        levels=levels,
    )
    targets = torch.zeros(len(index), len(labels))
    for row, i in enumerate(index):
        targets[row, train_recs[i].image_labels] = 1.0
    rf = repeat_factors(train_recs, len(labels), cfg.augment.repeat_threshold)
    val_pooled, _ = pooled_views(
        val_recs, backbone, spec, cfg.augment, cfg.seed, 1, device, levels=levels
    )
    task = TASKS["classification"](
        cfg,
        backbone,
        labels,
        pooled,
        targets,
        np.array([rf[i] for i in index]),
        val_recs,
        val_pooled,
        _multi_label(dataset),
        device,
    )
    return task, len(index)


def _measure_step(task: TaskAdapter) -> float:
    import copy

    module = copy.deepcopy(task.module)
    saved, task.module = task.module, module
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-6)
    rng = np.random.default_rng(12345)
    times = []
    try:
        with torch.random.fork_rng(devices=[]):
            for _ in range(4):
                t = time.monotonic()
                loss = sum(task.losses(rng).values())
                opt.zero_grad()
                loss.backward()  # type: ignore[union-attr]
                opt.step()
                times.append(time.monotonic() - t)
    finally:
        task.module = saved
    return float(np.median(times[1:]))


def _test_metrics(
    out_dir: Path, records: list[ImageRecord], labels: list[str], card: ModelCard
) -> dict[str, Any]:
    """Test metrics through the served path: ONNX Runtime + numpy decoding, card thresholds."""
    from customlabels.evaluation.metrics import classification_metrics, detection_metrics
    from customlabels.inference.predictor import Predictor
    from customlabels.training.views import load_image

    predictor = Predictor.load(out_dir, threads=max(1, torch.get_num_threads()))
    preds: list[Detections] = [predictor.predict(load_image(r)[0]) for r in records]
    if card.task == Task.OBJECT_LOCALIZATION:
        return detection_metrics(records, preds, labels, thresholds=card.thresholds).to_dict()
    return classification_metrics(
        records, preds, labels, thresholds=card.thresholds, multi_label=card.multi_label
    ).to_dict()


def _plot(out_dir: Path, history: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "classification", "bbox_regression", "bbox_ctrness"):
        if any(key in h for h in history):
            ax[0].plot(steps, [h.get(key, math.nan) for h in history], label=key)
    ax[0].set_xlabel("step")
    ax[0].set_title("training loss")
    ax[0].legend()
    ax[1].plot(steps, [h.get("val_score", math.nan) for h in history], label="selection score")
    ax[1].plot(steps, [h.get("val_map50", math.nan) for h in history], label="mAP@0.5")
    ax[1].set_xlabel("step")
    ax[1].set_title("validation")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out_dir / "training_curves.png", dpi=80)
    plt.close(fig)
