"""Runtimes that run a segmentation network: one class per runtime, one small protocol.

A backend takes a prepared batch (N×3×H×W float32, normalised) and returns the head's
logits before the final upsampling (N×K×h×w, at the head's stride). Everything after that,
labels and probabilities, is :class:`segmnv3.inference.Segmenter`'s job, in one place.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..models import SegmentationModel
from .onnx import check_threads, lowres_graph, ort_session
from .openvino_backend import OpenVinoBackend
from .precision import PRECISIONS, check_lowres_output, resolve_precision

__all__ = [
    "BACKENDS", "PRECISIONS", "Backend", "OpenVinoBackend", "OrtBackend", "TorchBackend",
    "choose_backend", "fuse_batchnorm", "installed_backends", "resolve_precision",
]  # fmt: skip


class Backend(Protocol):
    """What :class:`~segmnv3.inference.Segmenter` needs from a runtime."""

    name: str  # "torch", "onnxruntime" or "openvino"
    device: torch.device
    precision: str  # what really runs: "fp32", "bf16" or "int8"

    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor:
        """N×K×h×w logits (float, or uint8 from an int8 model) for a prepared batch."""
        ...


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
        self, session, device: str | torch.device = "cpu", source: str = "the model"
    ) -> None:
        outputs = {o.name: o.type for o in session.get_outputs()}
        check_lowres_output(source, list(outputs), str(session.get_outputs()[0].shape))
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
