"""ONNX export (opset 17, input ``images`` float32 NCHW with dynamic batch, height and width)
and the check that ONNX Runtime reproduces PyTorch's outputs."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from customlabels.core.model_card import ONNX_NAME, InputSpec
from customlabels.errors import InternalServerError
from customlabels.training.adapter import TaskAdapter

__all__ = ["OPSET", "check_onnx", "export_onnx", "export_task"]

log = logging.getLogger(__name__)

OPSET = 17


def export_task(task: TaskAdapter, out_dir: Path, spec: InputSpec) -> float:
    """Export the trained ``task`` to ``out_dir/model.onnx`` at the served input size and check
    it against PyTorch; returns the max abs difference of the outputs."""
    module = task.export_module()
    path = out_dir / ONNX_NAME
    size_hw = (spec.height, spec.width)
    export_onnx(module, path, task.head_card()["outputs"], size_hw)
    diff = check_onnx(module, path, size_hw)
    log.info("exported %s (ONNX vs PyTorch max diff %.1e)", path, diff)
    return diff


def export_onnx(
    module: nn.Module, path: Path, output_names: list[str], size_hw: tuple[int, int]
) -> Path:
    """Export ``module`` (images -> outputs) to ``path``.

    Height and width are dynamic (any multiple of 32 works); ``size_hw`` is the example size.
    """
    module = module.eval().cpu()
    example = torch.zeros(1, 3, *size_hw)
    axes: dict[str, dict[int, str]] = {"images": {0: "batch", 2: "height", 3: "width"}}
    for name in output_names:
        axes[name] = {0: "batch", 1: "locations"} if name != "logits" else {0: "batch"}
    tmp = path.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        # The legacy exporter's deprecation and tracer notices are not actionable here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            input_names=["images"],
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    tmp.replace(path)
    return path


def check_onnx(
    module: nn.Module, path: Path, size_hw: tuple[int, int], atol: float = 1e-4, seed: int = 0
) -> float:
    """Run both on the same random image; returns the max abs difference, raises above ``atol``."""
    import onnxruntime as ort

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, *size_hw, generator=g) * 2 - 1
    with torch.no_grad():
        ref = module.eval()(x)
    refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = session.run(None, {"images": x.numpy()})
    diff = max(float(np.abs(o - r.numpy()).max()) for o, r in zip(outs, refs, strict=True))
    if diff > atol:
        raise InternalServerError(
            f"{path}: ONNX Runtime differs from PyTorch by {diff:.2e} (expected ≤ {atol:.0e})"
        )
    return diff
