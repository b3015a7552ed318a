"""Few-step training on real images: it learns, it resumes exactly, it is deterministic, and
the exported ONNX graph computes what PyTorch computes."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from customlabels.core.boxes import box_area
from customlabels.core.model_card import ModelCard
from customlabels.evaluation.metrics import detection_metrics
from customlabels.inference.predictor import Predictor
from customlabels.training import train_dataset
from customlabels.training.config import TaskChoice, load_config
from customlabels.training.detector_task import DetectorTask
from customlabels.training.selection import (
    NMS_CANDIDATES,
    TILING_CANDIDATES,
    choose_nms_iou,
    choose_tiling,
    label_thresholds,
    selection_score,
)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter)


def test_detector_learns(tiny_detector_dir: Path, tiny_detector_data) -> None:  # type: ignore[no-untyped-def]
    """The loss falls, and confident detections land on the training images' boxes."""
    with (tiny_detector_dir / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.8 * losses[0], losses

    card = ModelCard.load(tiny_detector_dir)
    predictor = Predictor.load(tiny_detector_dir)
    by_ref = {im.ref: im for im in tiny_detector_data[0].images}
    hits = 0
    for ref in card.dataset["images"]["train"][:4]:
        rec = by_ref[ref]
        dets = predictor.predict(Image.open(rec.path).convert("RGB"))
        # raw scores: this checks learning; the calibrated ones rest on 3 validation images
        assert dets.raw_scores is not None
        confident = dets[dets.raw_scores >= 0.3]
        if len(confident) and len(rec.boxes):
            hits += int((_iou(confident.boxes, rec.boxes).max(axis=1) >= 0.3).any())
    assert hits >= 2


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    state = torch.load(folder / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    return state["best"]["state"]  # type: ignore[no-any-return]


def _prefixed(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def test_resume_after_interruption_reproduces_the_run(  # type: ignore[no-untyped-def]
    tiny_detector_dir: Path, tiny_detector_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupt at step 60 (Ctrl-C), resume: the weights equal the uninterrupted fixture's
    (same data, seed, steps, threads on CPU -> same weights)."""
    train, val, test, config = tiny_detector_data
    out = tmp_path / "run"
    original = DetectorTask.losses
    calls = {"n": 0}

    def interrupt(self: DetectorTask, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        calls["n"] += 1
        if calls["n"] == 60:
            raise KeyboardInterrupt
        return original(self, rng)

    monkeypatch.setattr(DetectorTask, "losses", interrupt)

    def run(resume: bool) -> Path:
        return train_dataset(
            train,
            out,
            test=test,
            validation=val,
            config=config,
            user=config.to_dict(),
            resume=resume,
            progress=False,
        )

    with pytest.raises(KeyboardInterrupt):
        run(resume=False)
    assert (out / "checkpoints" / "last.pt").is_file()
    assert not (out / "model.onnx").exists()
    monkeypatch.setattr(DetectorTask, "losses", original)
    run(resume=True)
    mine, theirs = _weights(out), _weights(tiny_detector_dir)
    assert mine.keys() == theirs.keys()
    for key in mine:
        torch.testing.assert_close(mine[key], theirs[key], rtol=0, atol=0, msg=key)
    assert "resumed at step" in (out / "train.log").read_text()


@pytest.mark.parametrize("fixture", ["tiny_detector_dir", "tiny_classifier_dir"])
def test_onnx_equals_pytorch(request: pytest.FixtureRequest, fixture: str) -> None:
    """The exported graph's raw outputs equal PyTorch's within 1e-4 on a real image."""
    folder: Path = request.getfixturevalue(fixture)
    card = ModelCard.load(folder)
    from customlabels.training.backbone import create_backbone
    from customlabels.training.classifier_task import ClassifierHead, ClassifierModel
    from customlabels.training.detector import FCOSDetector, FCOSNeckHead

    backbone = create_backbone(card.recipe["model"]["backbone"])
    weights = _weights(folder)
    if card.task.value == "OBJECT_LOCALIZATION":
        head = FCOSNeckHead(
            backbone.spec.channels,
            len(card.labels),
            card.recipe["model"]["fpn_channels"],
            card.recipe["model"]["head_convs"],
        )
        head.load_state_dict(_prefixed(weights, "neck_head."))
        stages = card.recipe["model"]["finetune_stages"]
        backbone.upper_blocks(stages).load_state_dict(_prefixed(weights, "tail."))
        model: torch.nn.Module = FCOSDetector(backbone, head)
    else:
        chead = ClassifierHead(
            backbone.spec.pooled_channels,
            len(card.labels),
            card.recipe["model"]["classifier_hidden"],
        )
        chead.load_state_dict(_prefixed(weights, "head."))
        stages = card.recipe["model"]["finetune_stages"]
        assert stages > 0, "the classifier fine-tunes backbone stages by default"
        backbone.upper_blocks(stages).load_state_dict(_prefixed(weights, "tail."))
        backbone.pool_head().load_state_dict(_prefixed(weights, "pool."))
        model = ClassifierModel(backbone, chead)
    predictor = Predictor.load(folder)
    rng = np.random.default_rng(0)
    for h, w in [(card.input.height, card.input.width), (320, 416)]:  # dynamic H/W
        x = rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            ref = model.eval()(torch.from_numpy(x))
        refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
        outs = predictor.raw(x)
        assert len(outs) == len(refs)
        for o, r in zip(outs, refs, strict=True):
            np.testing.assert_allclose(o, r.numpy(), atol=1e-4, rtol=0)


def test_card_contract(tiny_detector_dir: Path) -> None:
    card = ModelCard.load(tiny_detector_dir)
    images = card.dataset["images"]
    assert not set(images["train"]) & set(images["test"])
    assert not set(images["validation"]) & set(images["test"])
    assert not set(images["train"]) & set(images["validation"])
    assert set(card.dataset["sha256"]) == {"train", "validation", "test"}
    assert card.head["type"] == "fcos" and card.head["max_detections"] >= 1000
    assert "validation" in card.metrics and "test" in card.metrics
    assert card.versions["torch"] and card.versions["onnxruntime"]
    assert card.input.width % 32 == 0 and card.input.height % 32 == 0


@pytest.mark.parametrize("stages", [0, 1, 2])
def test_fine_tuned_stages_continue_from_cached_maps(stages: int) -> None:
    """Cached maps of the first 3 - k levels + the last k stages == the whole backbone."""
    from customlabels.training.backbone import create_backbone

    backbone = create_backbone("efficientnet-lite0")
    x = torch.randn(1, 3, 128, 160)
    whole = backbone.features(x)
    cached = backbone.features(x, 3 - stages)
    blocks = backbone.upper_blocks(stages)
    rest = backbone.continue_features(cached[-1], len(cached) - 1, blocks) if stages else []
    assert len(cached) + len(rest) == 3
    for a, b in zip(whole, cached + rest, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(backbone.pooled(x), backbone.pool_head()(whole[-1]))


def test_nms_iou_is_chosen_on_validation(tiny_detector_dir: Path, tiny_detector_data) -> None:  # type: ignore[no-untyped-def]
    """``eval.nms_iou: null``: the value with the best validation score (through the served
    path) is written to ``model.json`` and ``config.yaml``, with the thresholds found at it."""
    assert tiny_detector_data[3].eval.nms_iou is None
    card = ModelCard.load(tiny_detector_dir)
    chosen = card.head["nms_iou"]
    config = yaml.safe_load((tiny_detector_dir / "config.yaml").read_text())
    assert chosen in NMS_CANDIDATES and config["eval"]["nms_iou"] == chosen
    val = tiny_detector_data[1].images
    loaded = Predictor.load(tiny_detector_dir)
    images = [Image.open(r.path).convert("RGB") for r in val]
    scores = {}
    for iou in NMS_CANDIDATES:
        card_at = replace(card, head={**card.head, "nms_iou": iou})
        predictor = Predictor(card_at, loaded.session, tiny_detector_dir)
        metrics = detection_metrics(val, [predictor.predict(im) for im in images], card.labels)
        scores[iou] = selection_score(metrics.per_label)
        if iou == chosen:
            expected = label_thresholds(metrics.per_label)
            for name in card.labels:
                assert card.thresholds[name] == pytest.approx(expected[name], abs=1e-3)
    # Training scored validation in PyTorch, here through ONNX Runtime: equal up to ties.
    assert scores[chosen] == pytest.approx(scores[choose_nms_iou(scores)], abs=1e-3), scores


def test_tiling_is_chosen_on_validation(tiny_detector_dir: Path, tiny_detector_data) -> None:  # type: ignore[no-untyped-def]
    """``eval.tiling: true``: the tiny detector's bee frames (1920×1080, served at 640×384) are
    scored with each candidate tiling through the served path; what the run kept in
    ``model.json`` is what the rule keeps on those scores (off, unless tiles gain the margin),
    and the run logged the scores it compared."""
    assert tiny_detector_data[3].eval.tiling
    card = ModelCard.load(tiny_detector_dir)
    assert card.tiling is None or card.tiling in TILING_CANDIDATES
    val = tiny_detector_data[1].images
    loaded = Predictor.load(tiny_detector_dir)
    images = [Image.open(r.path).convert("RGB") for r in val]
    scores = {}
    for tiling in (None, *TILING_CANDIDATES):
        predictor = Predictor(replace(card, tiling=tiling), loaded.session, tiny_detector_dir)
        metrics = detection_metrics(val, [predictor.predict(im) for im in images], card.labels)
        scores[tiling] = selection_score(metrics.per_label)
    cands = {t: v for t, v in scores.items() if t is not None}
    assert card.tiling == choose_tiling(scores[None], cands), scores
    assert "on validation (score off:" in (tiny_detector_dir / "train.log").read_text()


def test_classifier_card_has_no_tiling(tiny_classifier_dir: Path) -> None:
    assert ModelCard.load(tiny_classifier_dir).tiling is None
    assert "tiling" not in (tiny_classifier_dir / "train.log").read_text()


def test_config_yaml_round_trips_and_the_given_config_is_untouched(  # type: ignore[no-untyped-def]
    tiny_detector_dir: Path, tiny_detector_data
) -> None:
    """``config.yaml`` is the resolved recipe (as ``model.json`` ``recipe``) and loads back as
    it was written; the config the run was given still reads as before."""
    loaded, raw = load_config(tiny_detector_dir / "config.yaml")
    assert loaded.to_dict() == raw == ModelCard.load(tiny_detector_dir).recipe
    given = tiny_detector_data[3]
    assert given.task is TaskChoice.AUTO and loaded.task is TaskChoice.DETECTION
    assert given.eval.nms_iou is None and loaded.eval.nms_iou in NMS_CANDIDATES
    assert loaded.optim.steps == given.optim.steps == 100


def test_with_ema_the_average_is_validated_and_kept(  # type: ignore[no-untyped-def]
    tiny_detector_data, tmp_path: Path
) -> None:
    """``optim.ema``: the model kept is the moving average of the weights, not the last
    trained weights, and the average is in the checkpoint for a resume."""
    from customlabels.training.loop import ema_decay

    train, val, test, config = tiny_detector_data
    config = config.resolved({"optim.steps": 30, "optim.ema": 0.2, "eval.every": 30})
    out = train_dataset(
        train, tmp_path / "run", test=test, validation=val, config=config, progress=False
    )
    state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    average = _prefixed(state["ema"], "module.")
    assert int(state["ema"]["n_averaged"]) == 30
    assert state["best"]["step"] == 30
    kept, trained = state["best"]["state"], state["module"]
    assert kept.keys() == average.keys() == trained.keys()
    for key in kept:
        torch.testing.assert_close(kept[key], average[key], rtol=0, atol=0, msg=key)
    moved = [k for k, v in kept.items() if v.is_floating_point() and not torch.equal(v, trained[k])]
    assert len(moved) > len(kept) // 2, "the average trails the trained weights"
    assert ema_decay(0.2, 30) == pytest.approx(1 - 1 / 6)
    assert ema_decay(0.05, 10) == 0.0  # a window under one step: the weights themselves
