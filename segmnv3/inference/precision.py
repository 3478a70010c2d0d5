"""What a backend may run (the precision asked, against the device and its CPU features)
and the one output every backend's graph must have."""

from __future__ import annotations

import logging

import torch

from ..device import CpuFeatures, native_bf16

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")


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
