"""The training recipe's optimizer and schedule: SGD, linear warmup + polynomial decay."""

from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov,
    )


def lr_factor(iteration: int, total: int, warmup: int, warmup_factor: float, power: float):
    """Linear warmup from ``warmup_factor`` to 1 over ``warmup`` iterations, then
    ``(1 - t)^power`` decay to 0 over the remaining ones."""
    if iteration < warmup:
        return warmup_factor + (1 - warmup_factor) * iteration / warmup
    remaining = max(total - warmup, 1)
    return max(0.0, 1 - (iteration - warmup) / remaining) ** power


def build_scheduler(optimizer, cfg: TrainConfig, total_iters: int):
    warmup = min(cfg.warmup_iters, max(total_iters - 1, 0))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda it: lr_factor(it, total_iters, warmup, cfg.warmup_factor, cfg.poly_power),
    )
