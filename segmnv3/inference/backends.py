"""Runtimes that run a segmentation network: one class per runtime, one small protocol.

A backend takes a prepared batch (N×3×H×W float32, normalised) and returns the head's
logits before the final upsampling (N×K×h×w, at the head's stride). Everything after that,
labels and probabilities, is :class:`segmnv3.inference.Segmenter`'s job, in one place.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..device import CpuFeatures, native_bf16, openvino_precision
from ..models import SegmentationModel
from .int8 import float_hard_swish
from .onnx import check_threads, lowres_graph, ort_session, read_proto

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")


class Backend(Protocol):
    """What :class:`~segmnv3.inference.Segmenter` needs from a runtime."""

    name: str  # "torch", "onnxruntime" or "openvino"
    device: torch.device
    precision: str  # what really runs: "fp32", "bf16" or "int8"

    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor:
        """N×K×h×w logits (float, or uint8 from an int8 model) for a prepared batch."""
        ...


def resolve_precision(
    precision: str, backend: str, device: torch.device, features: CpuFeatures | None = None
) -> str:
    """``"auto"`` → bf16 where ``device`` computes it natively (a CPU's ``features``,
    default this machine's), else fp32; an explicit choice is checked against what the
    backend can run."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if backend == "onnxruntime":
        if precision == "bf16":
            raise ValueError(
                "precision 'bf16': onnxruntime runs fp32 (or an exported int8 model) here; "
                "bf16 needs backend 'openvino' or 'torch'"
            )
        return "fp32"
    if precision == "auto":
        return "bf16" if native_bf16(device, features) else "fp32"
    if precision == "bf16" and not native_bf16(device, features):
        if backend == "openvino":
            raise ValueError(
                f"precision 'bf16': this {device.type.upper()} has no native bf16 (AVX512_BF16 "
                "or AMX), so OpenVINO would run fp32; use precision 'fp32' or 'auto'"
            )
        log.warning(
            "precision bf16 on %s: no native bf16 here, PyTorch emulates it (slower)", device
        )
    return precision


def check_lowres_output(name: str, outputs: list[str], shape: str) -> None:
    """A backend's graph must output ``logits_lowres`` (N×K×h×w): anything else is another
    graph, even when it carries segmnv3's metadata."""
    rank = shape.count(",") + 1 if shape.strip("[]() ") else 0
    if outputs[:1] != ["logits_lowres"] or rank != 4:
        raise ValueError(
            f"{name}: outputs {outputs} of shape {shape}, not the segmentation logits "
            "'logits_lowres' (N×K×h×w): not a model exported by segmnv3 (export_seg.py), "
            "or its graph was changed"
        )


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm that follows a conv in a Sequential into that conv
    (same outputs, two fewer passes over memory per layer). Returns a fused copy."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:], strict=False):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                setattr(module, name_a, fuse_conv_bn_eval(a, b))
                setattr(module, name_b, nn.Identity())
    return model


class TorchBackend:
    """Eager PyTorch with BN folded into convs, channels-last memory and inference mode;
    bf16 through autocast."""

    name = "torch"

    def __init__(
        self,
        model: SegmentationModel,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        num_threads: int | None = None,
    ) -> None:
        if not isinstance(model, SegmentationModel):
            raise TypeError(f"TorchBackend runs a segmnv3 SegmentationModel, got {type(model)}")
        check_threads(num_threads)
        if num_threads:  # PyTorch's intra-op pool is the process's: this sets it for all
            torch.set_num_threads(num_threads)
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.name, self.device)
        self.model = fuse_batchnorm(model).to(self.device)
        self.model.aux_classifier = None  # the auxiliary head only serves training
        self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
        bf16 = self.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            return self.model(x, upsample=False)["out"].float()


class OrtBackend:
    """An ONNX Runtime session of an exported model (fp32 or int8) without its
    full-resolution tail. Build it with :meth:`load`."""

    name = "onnxruntime"

    def __init__(
        self, session, device: str | torch.device = "cpu", name: str = "the model"
    ) -> None:
        outputs = {o.name: o.type for o in session.get_outputs()}
        first = session.get_outputs()[0]
        check_lowres_output(name, list(outputs), str(first.shape))
        self.session, self.device = session, torch.device(device)
        self.precision = "int8" if outputs["logits_lowres"] == "tensor(uint8)" else "fp32"

    @classmethod
    def load(
        cls,
        model: str | Path | bytes,
        device: str = "cpu",
        num_threads: int | None = None,
        precision: str = "fp32",
    ) -> OrtBackend:
        """A session of ``model`` (an exported file or its bytes) that outputs the logits
        before the final upsampling (see :func:`segmnv3.inference.onnx.lowres_graph`)."""
        resolve_precision(precision, cls.name, torch.device(device))
        session = ort_session(lowres_graph(model), device=device, num_threads=num_threads)
        return cls(session, device, "the model" if isinstance(model, bytes) else str(model))

    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor:
        (out,) = self.session.run(["logits_lowres"], {"input": batch})
        return torch.from_numpy(out)


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
        chosen = resolve_precision(precision, cls.name, dev)
        config = {"INFERENCE_PRECISION_HINT": "bf16" if chosen == "bf16" else "f32"}
        if num_threads:
            config["INFERENCE_NUM_THREADS"] = int(num_threads)
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


# Runtimes in the order "auto" prefers them on a CPU (fastest first); the pip extra of each.
BACKENDS: dict[str, type] = {
    "openvino": OpenVinoBackend,
    "onnxruntime": OrtBackend,
    "torch": TorchBackend,
}
EXTRAS = {"openvino": "segmnv3[openvino]", "onnxruntime": "segmnv3[onnx]", "torch": "segmnv3"}


def installed_backends() -> list[str]:
    """The backends whose runtime is importable here, in ``BACKENDS`` order."""
    return [name for name in BACKENDS if importlib.util.find_spec(name) is not None]


def choose_backend(name: str, device: str | torch.device) -> str:
    """``"auto"`` → torch on CUDA, else the fastest installed runtime; a named backend is
    checked (known, installed)."""
    device = torch.device(device)
    choices = ["auto", *BACKENDS]
    if name not in choices:
        raise ValueError(
            f"backend {name!r}; choose one of {', '.join(choices)} (installed here: "
            f"{', '.join(installed_backends())})"
        )
    if name == "auto":
        return "torch" if device.type == "cuda" else installed_backends()[0]
    if name not in installed_backends():
        raise ValueError(f"backend {name!r} is not installed: pip install '{EXTRAS[name]}'")
    return name
