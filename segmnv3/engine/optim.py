"""The training recipe's optimizer and schedule: SGD, linear warmup + polynomial decay."""

from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD over two groups: the backbone (``lr × train.backbone_lr_mult``) and the rest."""
    backbone = {id(p) for p in model.backbone.parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if id(p) in backbone], "lr": cfg.lr * cfg.backbone_lr_mult},
        {"params": [p for p in params if id(p) not in backbone], "lr": cfg.lr},
    ]
    return torch.optim.SGD(
        [g for g in groups if g["params"]],
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


def build_scheduler(optimizer, cfg: TrainConfig, total_iters: int, frozen_iters: int = 0):
    """Warmup + poly for every group; the backbone group (the first of two) gets 0 for its
    first ``frozen_iters`` iterations (``train.freeze_backbone_epochs``)."""
    warmup = min(cfg.warmup_iters, max(total_iters - 1, 0))

    def factor(it: int) -> float:
        return lr_factor(it, total_iters, warmup, cfg.warmup_factor, cfg.poly_power)

    lambdas = [factor] * len(optimizer.param_groups)
    if frozen_iters and len(lambdas) == 2:
        lambdas[0] = lambda it: 0.0 if it < frozen_iters else factor(it)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
