"""ExecuTorch's ``.pte`` (PyTorch's on-device runtime, XNNPACK delegate): lowering, static
int8 by PT2E with the XNNPACK quantizer, and the backend that runs the file here. The card
and the graph are :mod:`segmnv3.inference.mobile`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from ..device import one_torch_thread
from .mobile import PhoneBackend, args_of, require
from .mobile_argmax import CellArgmax
from .mobile_layers import float_ops, left_out
from .mobile_rewrites import SignedBytes


def lower_executorch(graph: nn.Module, example) -> tuple[bytes, list[str]]:
    """``graph`` (float, or PT2E-quantized) exported on ``example`` (a tensor or a tuple),
    lowered to XNNPACK and serialised; also the compute nodes left outside the delegate,
    each with the layer it comes from."""
    require("executorch", "ExecuTorch")
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.generic_node_configs import (
        HardswishConfig,
    )
    from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    class Int8Hardswish(HardswishConfig):
        # XNNPACK runs hardswish on int8 tensors (its QS8 hardswish); the stock config takes
        # only the float one, which leaves each int8 hardswish between two converts.
        def supported_precision_types(self):
            return [ConfigPrecisionType.FP32, ConfigPrecisionType.STATIC_QUANT]

    configs = [Int8Hardswish if c is HardswishConfig else c for c in ALL_PARTITIONER_CONFIGS]
    program = torch.export.export(graph, args_of(example))
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner(configs)])
    outside = left_out(lowered.exported_program().graph_module.graph)
    return lowered.to_executorch().buffer, outside


# Left in float by the int8 quantizer, on purpose: the labels' comparisons (CellArgmax) and
# the input bytes' exact 0…255 values (SignedBytes). Not listed among the card's float_ops.
FLOAT_ON_PURPOSE = (CellArgmax, SignedBytes)


_HARDSWISH = ("aten.hardswish.default", "aten.hardswish_.default")


def _int8_hardswish_quantizer():
    """XNNPACK's quantizer, which also quantizes hardswish: its stock patterns leave all 20
    of MobileNetV3's in float, each between a dequantize and a quantize."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    class Int8HardswishQuantizer(XNNPACKQuantizer):
        def annotate(self, model):
            config = self.global_config
            if config is not None:
                for node in model.graph.nodes:
                    if node.op == "call_function" and str(node.target) in _HARDSWISH:
                        node.meta["quantization_annotation"] = QuantizationAnnotation(
                            input_qspec_map={node.args[0]: config.input_activation},
                            output_qspec=config.output_activation,
                            _annotated=True,
                        )
            return super().annotate(model)

    return Int8HardswishQuantizer()


def quantize_pt2e(graph: nn.Module, example, batches: Iterable, float_out: list | None = None):
    """Static int8 by PT2E: XNNPACK's quantizer (hardswish included), per-channel symmetric
    weights, observers calibrated on ``batches``; ``float_out`` gets the ops the quantizer
    left in float."""
    require("executorch", "ExecuTorch")
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = _int8_hardswish_quantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
    for kept in FLOAT_ON_PURPOSE:
        quantizer.set_module_type(kept, None)
    captured = torch.export.export(graph, args_of(example)).module()
    prepared = prepare_pt2e(captured, quantizer)
    if float_out is not None:
        # entries read "op (layer (Class))", or "… ×n" when a layer has several
        on_purpose = [f"({m.__name__}))" for m in FLOAT_ON_PURPOSE]
        float_out += [op for op in float_ops(prepared) if not any(tag in op for tag in on_purpose)]
    with torch.no_grad():
        for batch in batches:
            prepared(*args_of(batch))
    return convert_pt2e(prepared)


def set_executorch_threads(num_threads: int) -> None:
    """The threads of ExecuTorch's XNNPACK threadpool (one pool per process: every .pte in
    it runs with this many)."""
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(int(num_threads))


class ExecutorchBackend(PhoneBackend):
    """A ``.pte`` run by ExecuTorch's runtime (``executorch.runtime``)."""

    name = "executorch"

    def __init__(self, source: str | Path | bytes, card: dict, num_threads: int | None = None):
        require("executorch", "ExecuTorch")
        from executorch.runtime import Runtime

        super().__init__(card)
        if num_threads is not None:
            set_executorch_threads(num_threads)
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        # The program owns the memory its method runs in: both are kept.
        self.program = Runtime.get().load_program(data)
        self.method = self.program.load_method("forward")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        # ExecuTorch's Python binding copies tensors in and out with torch ops; on torch's
        # OpenMP pool its worker then spins on a core XNNPACK's threads need (on 2 cores,
        # the demo's int8 file at 512×1024 took 20 ms a run instead of 14).
        with one_torch_thread():
            return self.method.execute([x])[0]
