"""Static int8 quantization of a model's ONNX graph with ONNX Runtime (numpy + Pillow, no torch).

The float32 graph is quantized in the QDQ format (``QuantizeLinear`` / ``DequantizeLinear`` pairs
around the quantized operators, which ONNX Runtime's CPU provider fuses into integer kernels):
weights int8 per output channel, activations uint8 per tensor (asymmetric) with ranges measured
(min/max) on calibration images. uint8 activations ("U8S8"), not int8: ONNX Runtime's x86
kernels are U8S8; with int8 activations the tiny test detector ran no faster than float32
(160 vs 158 ms, 2 threads, a loaded 2-core x86 with VNNI), with uint8 2.1× faster (74 ms) and
as close to float32. Weights use 7 of their 8 bits (``reduce_range``): ONNX Runtime's x86 U8S8
products can saturate at full range, and did: the tiny bee-crops classifier's top label changed
on 3 of 12 held-out crops at 8 bits (softmax off by up to 0.47), on none at 7 (≤ 0.15); the
detector kept its speed and closeness.

The calibration images go through :func:`~customlabels.inference.preprocess.preprocess` with the
card's ``input``: the very tensors the served model sees.

The quantized graph keeps the float32 input ``images`` and the float32 outputs, so
:class:`~customlabels.inference.predictor.Predictor` serves it unchanged. It needs the ``onnx``
package (ONNX Runtime's quantization tools read and write the graph with it).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from customlabels.core.model_card import InputSpec
from customlabels.errors import InvalidParameterError
from customlabels.inference.preprocess import preprocess
from customlabels.io.images import decode_image

__all__ = ["FLOAT_OPS", "INPUT_NAME", "calibration_tensors", "quantize_int8"]

log = logging.getLogger(__name__)

INPUT_NAME = "images"

#: Operators left in float32. InstanceNormalization (the group norms of the heads): its scale and
#: bias are rank-1 vectors, which per-channel weight quantization cannot take (ONNX Runtime warns
#: and falls back), and it is cheap next to the convolutions around it.
FLOAT_OPS = ("InstanceNormalization",)


def calibration_tensors(
    images: Sequence[Path], spec: InputSpec
) -> Iterator[npt.NDArray[np.float32]]:
    """Each image as the served input: float32 ``(1, 3, spec.height, spec.width)``.

    Raises:
        InvalidImageError / ImageTooLargeError: an image that cannot be decoded.
    """
    for path in images:
        image = decode_image(Path(path).read_bytes(), name=str(path))
        tensor, _ = preprocess(image, spec)
        yield tensor[None]


def quantize_int8(
    fp32_onnx: Path, out_onnx: Path, images: Sequence[Path], spec: InputSpec
) -> dict[str, Any]:
    """Quantize ``fp32_onnx`` to ``out_onnx`` (static, QDQ, int8), calibrated on ``images``.

    Args:
        fp32_onnx: a float32 graph with input ``images`` float32 ``(N, 3, H, W)``.
        out_onnx: where the int8 graph goes (replaced atomically once complete).
        images: calibration images (JPEG/PNG files), preprocessed with ``spec``; at least one.
        spec: the model card's ``input``.

    Returns:
        The card's ``quantization`` entry, without the calibration source (the caller knows
        which images these are): ``{type, format, per_channel, activations, weights,
        float_ops, preprocessed, calibration: {method, images}, versions}``.

    Raises:
        InvalidParameterError: no images, the ``onnx`` package missing, or a graph without the
            input ``images``.
    """
    if not images:
        raise InvalidParameterError("int8: expected at least one calibration image, got none")
    quantization = _quantization_module()
    import onnx
    import onnxruntime

    model = onnx.load(str(fp32_onnx), load_external_data=False)
    inputs = [i.name for i in model.graph.input]
    if INPUT_NAME not in inputs:
        raise InvalidParameterError(
            f"{fp32_onnx}: expected a graph input {INPUT_NAME!r}, got {inputs}"
        )
    out_onnx = Path(out_onnx)
    with tempfile.TemporaryDirectory(prefix=".int8-", dir=out_onnx.parent) as tmp:
        source, preprocessed = _pre_process(Path(fp32_onnx), Path(tmp) / "pre.onnx")
        graph = onnx.load(str(source), load_external_data=False).graph
        excluded = [n.name for n in graph.node if n.op_type in FLOAT_OPS]
        reader = _Reader(calibration_tensors(images, spec))
        partial = Path(tmp) / "int8.onnx"
        quantization.quantize_static(
            str(source),
            str(partial),
            reader,
            quant_format=quantization.QuantFormat.QDQ,
            per_channel=True,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            reduce_range=True,  # 7-bit weights: see the module docstring
            calibrate_method=quantization.CalibrationMethod.MinMax,
            # (MinMax keeps only each tensor's min and max per image: memory does not grow with
            # the images. Its CalibMaxIntermediateOutputs is not set on purpose: in ONNX Runtime
            # 1.32 it drops the runs collected so far instead of folding them into the ranges.)
            nodes_to_exclude=excluded,
        )
        partial.replace(out_onnx)
    log.info("int8: %s from %s, calibrated on %d image(s)", out_onnx, fp32_onnx, reader.count)
    return {
        "type": "int8",
        "format": "QDQ",
        "per_channel": True,
        "activations": "uint8",
        "weights": "int8",
        "reduce_range": True,
        "float_ops": list(FLOAT_OPS),
        "preprocessed": preprocessed,
        "calibration": {"method": "minmax", "images": reader.count},
        "versions": {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__},
    }


def _quantization_module() -> Any:
    try:
        import onnxruntime.quantization as quantization
    except ImportError as exc:
        raise InvalidParameterError(
            f"int8 export needs the onnx package ({exc}): pip install 'customlabels[int8]'"
        ) from None
    return quantization


def _pre_process(fp32_onnx: Path, out: Path) -> tuple[Path, bool]:
    """ONNX Runtime's recommended step before quantizing: shape inference and graph
    optimization (constants folded, so that every weight is an initializer the quantizer sees).
    A graph it cannot handle is quantized as it is; returns the graph to quantize."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(fp32_onnx), str(out))
    except Exception as exc:  # ONNX Runtime raises bare Exceptions from its shape inference
        log.warning("int8: pre-processing %s failed (%s); quantizing it as it is", fp32_onnx, exc)
        return fp32_onnx, False
    return out, True


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over preprocessed tensors.

    Duck-typed rather than subclassed: the base class lives in ``onnxruntime.quantization``, which
    is imported only when quantizing; its ``__subclasshook__`` accepts any class with a
    ``get_next``, so ``isinstance(reader, CalibrationDataReader)`` holds.
    """

    def __init__(self, tensors: Iterator[npt.NDArray[np.float32]]) -> None:
        self._tensors = tensors
        self.count = 0

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        tensor = next(self._tensors, None)
        if tensor is None:
            return None
        self.count += 1
        return {INPUT_NAME: tensor}
