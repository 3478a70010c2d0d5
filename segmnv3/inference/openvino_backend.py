"""The OpenVINO backend: an exported model without its full-resolution tail, compiled for
the CPU (bf16 where the CPU has it natively), int8 files laid out the way OpenVINO fuses
them."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..device import openvino_precision
from .int8_graph import float_hard_swish
from .onnx import check_threads, lowres_graph, read_proto
from .precision import check_lowres_output, resolve_precision


@functools.cache
def _openvino_core():
    """One OpenVINO Core for the process: compiled models must not outlive the Core that
    loaded their plugin (a Core dropped early crashes the process later, at random)."""
    import openvino as ov

    return ov.Core()


class OpenVinoBackend:
    """An OpenVINO model of an exported ONNX model (fp32 or int8) without its
    full-resolution tail; fp32 models run in bf16 where the CPU has it natively.

    Shapes: compiled for dynamic shapes, OpenVINO 2026.4 ran the int8 graph's uint8 Resize
    wrongly (the demo model lost 2.5 mIoU against the same file on ONNX Runtime), so an
    int8 model compiles statically for each input shape (0.8 s at 1024×512). An fp32 model
    runs a shape's first call on its dynamic compile and compiles statically from the
    second on (0.15 s; 3-7 % faster after), so a folder of differently sized photos pays no
    compile per photo. The last ``max_shapes`` static compiles are kept (~150 MiB each at
    2048×1024).
    """

    name = "openvino"
    max_shapes = 4

    def __init__(self, model, config: dict, device: str | torch.device = "cpu") -> None:
        self.model, self.config, self.device = model, dict(config), torch.device(device)
        out_type = model.outputs[0].get_element_type().get_type_name()
        hint = config.get("INFERENCE_PRECISION_HINT", "f32")
        self.precision = "int8" if out_type == "u8" else "bf16" if hint == "bf16" else "fp32"
        self._dynamic = None if self.precision == "int8" else self._compile(None)
        self._static: OrderedDict[tuple, object] = OrderedDict()  # shape -> infer request
        self._seen: OrderedDict[tuple, None] = OrderedDict()  # shapes run once, dynamically
        self._lock = threading.Lock()  # one infer request per compile; calls take turns

    @classmethod
    def load(
        cls,
        model: str | Path | bytes,
        device: str = "cpu",
        num_threads: int | None = None,
        precision: str = "auto",
    ) -> OpenVinoBackend:
        """Read ``model`` (an exported file or its bytes) for the CPU; shapes compile on use."""
        dev = torch.device(device)
        if dev.type != "cpu":
            raise ValueError(f"backend 'openvino' runs on the CPU here, not on {device!r}")
        check_threads(num_threads)
        core, data = _openvino_core(), _openvino_graph(model)
        try:
            graph = core.read_model(data)
        except Exception as exc:  # OpenVINO's own errors are RuntimeErrors without the file
            name = "the model" if isinstance(model, bytes) else str(model)
            raise ValueError(f"{name}: OpenVINO cannot read it ({exc})") from exc
        name = "the model" if isinstance(model, bytes) else str(model)
        int8 = graph.outputs[0].get_element_type().get_type_name() == "u8"
        if int8 and precision == "bf16":
            raise ValueError(f"precision 'bf16': {name} is an int8 model; use precision "
                             "'auto' or 'fp32' (its float parts follow the CPU)")  # fmt: skip
        check_lowres_output(name, [o.get_any_name() for o in graph.outputs],
                            graph.outputs[0].get_partial_shape().to_string())  # fmt: skip
        # the file's own rule first: bf16 of an int8 file is wrong on every CPU
        chosen = resolve_precision(precision, cls.name, dev)
        config = {"INFERENCE_PRECISION_HINT": "bf16" if chosen == "bf16" else "f32"}
        if num_threads:
            config["INFERENCE_NUM_THREADS"] = int(num_threads)
        return cls(graph, config, device)

    def _compile(self, shape: tuple | None):
        """An infer request of the model compiled for ``shape`` (None: dynamic)."""
        model = self.model
        if shape is not None:
            model = model.clone()
            model.reshape({model.inputs[0]: list(shape)})
        compiled = _openvino_core().compile_model(model, "CPU", self.config)
        ran = openvino_precision(compiled.get_property("INFERENCE_PRECISION_HINT"))
        if self.precision in ("bf16", "fp32") and ran != self.precision:
            raise ValueError(f"precision {self.precision!r}: OpenVINO compiled this model in {ran}")
        return compiled.create_infer_request()

    def _request(self, shape: tuple):
        if shape in self._static:
            self._static.move_to_end(shape)
            return self._static[shape]
        if self._dynamic is not None and shape not in self._seen:
            self._seen[shape] = None
            if len(self._seen) > 64:
                self._seen.popitem(last=False)
            return self._dynamic
        request = self._static[shape] = self._compile(shape)
        if len(self._static) > self.max_shapes:
            self._static.popitem(last=False)
        return request

    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor:
        with self._lock:
            result = self._request(tuple(batch.shape)).infer({0: batch})
            out = next(iter(result.values()))
            return torch.from_numpy(np.array(out))  # a copy: the request reuses its buffer


def _openvino_graph(model: str | Path | bytes) -> bytes:
    """The graph OpenVINO runs: without the full-resolution tail, and an int8 model's
    hard-swishes laid out the way OpenVINO fuses them (see :func:`float_hard_swish`)."""
    data = lowres_graph(model)
    proto = read_proto(data)
    if any(n.op_type == "QuantizeLinear" for n in proto.graph.node) and float_hard_swish(proto):
        data = proto.SerializeToString()
    return data
