"""Model size and cost: parameter counts and multiply-accumulates (MACs) of convolutions."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN running stats are not counted)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass at ``height × width`` (batch 1).

    Counts convolutions and linear layers, which hold nearly all the arithmetic; activations,
    normalisation, pooling and interpolation are left out, as is customary for GMACs tables.
    """
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        model(torch.zeros(1, 3, height, width, device=param.device, dtype=param.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total
