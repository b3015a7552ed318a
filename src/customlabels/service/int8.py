"""``customlabels export --int8``: a model version quantized to int8, as a bundle that
:class:`~customlabels.inference.predictor.Predictor` serves unchanged.

Calibration images come from the model's own training split (``model.json``
``dataset.images.train``), never from its validation or test images, read through a Ground
Truth manifest that holds them: the one passed in, else the ``input/train.manifest`` a
service-trained version keeps beside its ``model/`` folder. The quantization itself is
:func:`customlabels.inference.quantize.quantize_int8`.

The int8 card is the float32 card with ``quantization`` set (its ``format_version`` becomes 2)
and ``metrics`` emptied: the float32 scores move to ``quantization.fp32_metrics``, since they
were not measured on this graph (``customlabels evaluate`` fills ``metrics.test`` again). The
thresholds and the confidence calibration stay those fitted on the float32 model.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from customlabels.core.model_card import ONNX_NAME, ModelCard
from customlabels.errors import InvalidParameterError
from customlabels.inference.quantize import quantize_int8
from customlabels.service.resolve import resolve_model, write_bundle

__all__ = ["DEFAULT_CALIBRATION_IMAGES", "TRAIN_MANIFEST", "calibration_images", "export_int8"]

log = logging.getLogger(__name__)

#: Calibration images by default: min/max ranges settle within a few dozen images of a set;
#: a hundred keeps the export within minutes on a CPU.
DEFAULT_CALIBRATION_IMAGES = 100

#: Where a service-trained version keeps its training manifest, relative to its ``model/``.
TRAIN_MANIFEST = Path("..") / "input" / "train.manifest"


def calibration_images(
    card: ModelCard,
    model_dir: Path,
    manifest: Path | None = None,
    count: int = DEFAULT_CALIBRATION_IMAGES,
    bucket_map: Mapping[str, Path] | None = None,
    seed: int = 0,
) -> tuple[list[Path], dict[str, Any]]:
    """Up to ``count`` image files of the model's training split, drawn at random (``seed``).

    Args:
        card: the float32 model's card (its ``dataset.images.train`` refs).
        model_dir: the model folder (for the default manifest, :data:`TRAIN_MANIFEST`).
        manifest: a Ground Truth manifest holding the training images; ``None``: the default.
        count: how many images at most (≥ 1).
        bucket_map: ``{bucket: folder}`` for the manifest's ``s3://`` refs.

    Returns:
        The image files, and the card's ``quantization.calibration`` source entry
        (``{manifest, split, seed, refs}``).

    Raises:
        InvalidParameterError: ``count`` < 1, no manifest, or no training image in it.
    """
    from customlabels.formats.groundtruth import load_ground_truth

    if count < 1:
        raise InvalidParameterError(f"--calibration-images: expected ≥ 1, got {count}")
    if manifest is None:
        manifest = (model_dir / TRAIN_MANIFEST).resolve()
        if not manifest.is_file():
            raise InvalidParameterError(
                f"{model_dir}: no calibration images: pass --calibration-manifest, the Ground "
                "Truth manifest the model was trained from (its images in the model's training "
                "split are used)"
            )
    records = load_ground_truth(Path(manifest), bucket_map=bucket_map).images
    images = card.dataset.get("images") if isinstance(card.dataset, dict) else None
    train = images.get("train") if isinstance(images, dict) else None
    split = "train"
    if isinstance(train, list) and train:
        wanted = set(train)
        records = [r for r in records if r.ref in wanted]
    else:  # a card without its splits (hand-made bundle): the manifest is taken as it is
        split = "manifest (the model card lists no training split)"
    usable = [r for r in records if r.path is not None]
    if not usable:
        raise InvalidParameterError(
            f"{manifest}: no image of the model's training split (model.json "
            "dataset.images.train) with a local file; pass the manifest the model was trained "
            "from (and --bucket-map for its s3:// refs)"
        )
    order = np.random.default_rng(seed).permutation(len(usable))[:count]
    chosen = [usable[i] for i in sorted(order.tolist())]
    source = {
        "manifest": str(manifest),
        "split": split,
        "seed": seed,
        "refs": [r.ref for r in chosen],
    }
    return [Path(r.path) for r in chosen if r.path is not None], source


def export_int8(
    ref: str | Path,
    out_dir: Path,
    *,
    calibration_manifest: Path | None = None,
    calibration_count: int = DEFAULT_CALIBRATION_IMAGES,
    bucket_map: Mapping[str, Path] | None = None,
    home: Path | None = None,
    database_url: str | None = None,
) -> Path:
    """Write the int8 bundle (``model.onnx`` + ``model.json``) of model ``ref`` to ``out_dir``.

    ``ref``: a model folder, bundle or version ARN (:func:`resolve_model`). ``out_dir`` is filled
    atomically (:func:`~customlabels.service.resolve.write_bundle`).

    Raises:
        InvalidParameterError: not a model folder, a model already quantized, no calibration
            images (see :func:`calibration_images`), or the ``onnx`` package missing.
    """
    src = resolve_model(ref, home, database_url)
    card = ModelCard.load(src)
    if card.quantization:
        raise InvalidParameterError(
            f"{src}: already an {card.precision} model; --int8 quantizes the float32 model"
        )
    images, source = calibration_images(
        card, src, calibration_manifest, calibration_count, bucket_map
    )
    log.info("int8: calibrating %s on %d training image(s)", src, len(images))

    def fill(tmp: Path) -> None:
        entry = quantize_int8(src / ONNX_NAME, tmp / ONNX_NAME, images, card.input)
        entry["calibration"].update(source)
        entry["fp32"] = {"model": str(src), "sha256": _sha256(src / ONNX_NAME)}
        entry["fp32_metrics"] = card.metrics
        replace(card, quantization=entry, metrics={}).save(tmp)

    return write_bundle(out_dir, fill)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
