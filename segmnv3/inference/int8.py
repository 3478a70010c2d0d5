"""Static int8 quantization of an exported model with ONNX Runtime, and the graph rewrites
that make the int8 model faster than the float one on a CPU.

ONNX Runtime quantizes the convolutions, but three things in a MobileNetV3 segmentation
graph stay in float and, left alone, cost as much as the int8 arithmetic saves (measured
with ONNX Runtime's profiler; see the README's performance section):

- hard-swish ``x · hardsigmoid(x)``: no int8 kernel for HardSigmoid, so every activation
  went ``DequantizeLinear → HardSigmoid → QuantizeLinear`` over the whole feature map;
- the full-resolution upsampling that makes the logits, and the argmax after it;
- a dequantized copy of those logits, computed even when nobody reads it.

The rewrites below keep all three in uint8.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..io import write_bytes_atomic
from .int8_graph import uint8_hard_sigmoid, uint8_tail
from .onnx import prune_graph


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over prepared input arrays."""

    def __init__(self, inputs: Iterable[np.ndarray]) -> None:
        self.inputs = iter(inputs)

    def get_next(self):
        x = next(self.inputs, None)
        return None if x is None else {"input": x}


def quantize_int8(
    fp32_path: str | Path,
    int8_path: str | Path,
    calibration: Iterable[np.ndarray],
    weight_bits: int = 7,
) -> None:
    """Static int8 quantization (QDQ, per-channel weights, calibrated on ``calibration``:
    N×3×H×W float32 arrays prepared exactly as for inference). The int8 model's only
    output is ``labels``.

    ``weight_bits``: 7 (the default) runs right on every x86 CPU; 8 keeps one more bit of
    each weight but saturates on CPUs without VNNI (see :func:`segmnv3.device.int8_weight_bits`).
    The choice is written in the file's metadata (``segmnv3.int8_weight_bits``)."""
    if weight_bits not in (7, 8):
        raise ValueError(f"int8 weight bits {weight_bits!r}; choose 7 or 8")
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # The full-resolution tail (the upsampling that makes ``logits``) is left out of the
    # quantizer's reach and rewritten by _uint8_tail instead.
    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    tail, tensors = [], {"logits"}
    for node in graph.node:  # the node making "logits" and everything after it
        if tensors & set(node.output) or tensors & set(node.input):
            tail.append(node.name)
            tensors |= set(node.output)
    int8_path = Path(int8_path)
    pre = int8_path.with_suffix(".pre.onnx")
    tmp = int8_path.with_suffix(".tmp.onnx")
    inputs = list(calibration)
    options = {
        "quant_format": QuantFormat.QDQ,
        "per_channel": True,
        "activation_type": QuantType.QUInt8,
        "weight_type": QuantType.QInt8,
        # 7-bit weights: without VNNI, x86 CPUs multiply uint8 by int8 with VPMADDUBSW,
        # whose int16 sums of two products saturate at full 8 bits (255·127·2 > 32767;
        # ONNX Runtime's 7-bit weights are symmetric, |w| <= 64: 255·64·2 = 32640 fits).
        # On the demo model's held-out images on an AVX2 CPU, int8 mIoU -0.06 against fp32
        # with 7-bit weights instead of -0.66 with 8-bit (ONNX Runtime; OpenVINO -0.11
        # against -0.60). With VNNI the products are summed in int32 and 8 bits are safe.
        "reduce_range": weight_bits == 7,
        "nodes_to_exclude": tail,
    }
    try:
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its progress
            _quantize(pre, tmp, inputs, options)
        proto = onnx.load(str(tmp))
        uint8_hard_sigmoid(proto)
        uint8_tail(proto)
        prune_graph(proto)
        source = onnx.load(str(fp32_path), load_external_data=False)
        props = {p.key: p.value for p in source.metadata_props}
        onnx.helper.set_model_props(proto, {**props, "segmnv3.int8_weight_bits": str(weight_bits)})
        write_bytes_atomic(int8_path, proto.SerializeToString())
    finally:
        for p in (pre, tmp):
            p.unlink(missing_ok=True)


def _quantize(pre: Path, tmp: Path, inputs: list[np.ndarray], options: dict) -> None:
    from onnxruntime.quantization import CalibrationMethod, quantize_static

    try:
        # Ranges from the 99.99th percentile, not the extremes: on the demo model's held-out
        # images, mIoU -0.66 against fp32 instead of -1.20 with min/max.
        quantize_static(str(pre), str(tmp), _Calibration(inputs),
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": 99.99}, **options)  # fmt: skip
    except ValueError:  # a tensor with no spread has no percentile histogram: min/max
        quantize_static(str(pre), str(tmp), _Calibration(inputs), **options)
