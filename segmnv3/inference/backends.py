"""Runtimes that run a segmentation network: one class per runtime, one small protocol.

A backend takes a prepared batch (N×3×H×W float32, normalised) and returns the head's
logits before the final upsampling (N×K×h×w, at the head's stride). Everything after that,
labels and probabilities, is :class:`segmnv3.inference.Segmenter`'s job, in one place.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..models import SegmentationModel
from .onnx import lowres_graph, ort_session


class Backend(Protocol):
    """What :class:`~segmnv3.inference.Segmenter` needs from a runtime."""

    name: str  # "torch", "onnxruntime", ...
    device: torch.device

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
    """Eager PyTorch with BN folded into convs, channels-last memory and inference mode."""

    name = "torch"

    def __init__(self, model: SegmentationModel, device: str | torch.device = "cpu") -> None:
        if not isinstance(model, SegmentationModel):
            raise TypeError(f"TorchBackend runs a segmnv3 SegmentationModel, got {type(model)}")
        self.device = torch.device(device)
        self.model = fuse_batchnorm(model).to(self.device)
        self.model.aux_classifier = None  # the auxiliary head only serves training
        self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
        return self.model(x, upsample=False)["out"].float()


class OrtBackend:
    """An ONNX Runtime session of an exported model (fp32 or int8) without its
    full-resolution tail. Build it with :meth:`load`."""

    name = "onnxruntime"

    def __init__(self, session, device: str | torch.device = "cpu") -> None:
        outputs = {o.name: o.type for o in session.get_outputs()}
        if "logits_lowres" not in outputs:
            raise ValueError(
                f"the session outputs {sorted(outputs)}, not 'logits_lowres': build the backend "
                "with OrtBackend.load(path), which cuts the graph before its upsampling"
            )
        self.session, self.device = session, torch.device(device)

    @classmethod
    def load(
        cls, model: str | Path | bytes, device: str = "cpu", num_threads: int | None = None
    ) -> OrtBackend:
        """A session of ``model`` (an exported file or its bytes) that outputs the logits
        before the final upsampling (see :func:`segmnv3.inference.onnx.lowres_graph`)."""
        session = ort_session(lowres_graph(model), device=device, num_threads=num_threads)
        return cls(session, device)

    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor:
        (out,) = self.session.run(["logits_lowres"], {"input": batch})
        return torch.from_numpy(out)
