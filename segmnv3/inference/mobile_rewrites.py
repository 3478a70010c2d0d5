"""What the phone exports rewrite in the graph before lowering (the state dict unchanged):
the int8 input's bytes as their values, global pools as means, and the module swap both
formats use."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn


class SignedBytes(nn.Module):
    """The RGB bytes typed int8 (a byte u ≥ 128 reads as q = u − 256) as their 0…255 float
    values: ``u = q − 256·clamp(q, −1, 0)``, exact for every byte. ExecuTorch's XNNPACK
    delegate converts int8 to float (``dequantize_per_tensor`` with scale 1, zero point 0)
    but not uint8, whose cast runs on ExecuTorch's portable kernels; the int8 input makes the
    demo's files 3.8–5.4 ms faster at 512×1024 (paired; see the README). The quantizer leaves
    this module in float."""

    def __init__(self) -> None:
        super().__init__()
        import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers the op)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.ops.quantized_decomposed.dequantize_per_tensor(x, 1.0, 0, -128, 127,
                                                                 torch.int8)  # fmt: skip
        return q - 256.0 * torch.clamp(q, -1.0, 0.0)


class GlobalMean(nn.Module):
    """``AdaptiveAvgPool2d(1)`` as a mean over H and W: the form ExecuTorch's XNNPACK delegate
    keeps inside the partition (the pool leaves it for a strided copy on portable kernels,
    and its 9 pools cut the demo's graph into 10 partitions: 58 → 42 ms int8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


def swap_modules(model: nn.Module, swap: Callable[[nn.Module], nn.Module | None]) -> nn.Module:
    """A copy of ``model`` with each submodule for which ``swap`` returns a module replaced
    by it (exports rewrite weightless layers this way; the state dict is unchanged)."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            new = swap(child)
            if new is not None:
                setattr(parent, name, new)
    return model


def mean_pools(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each global ``nn.AdaptiveAvgPool2d`` a :class:`GlobalMean`."""
    return swap_modules(model, lambda m: GlobalMean() if isinstance(m, nn.AdaptiveAvgPool2d)
                        and m.output_size in (1, (1, 1)) else None)  # fmt: skip
