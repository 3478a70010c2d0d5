"""The training recipe's pieces: SGD, warmup + polynomial decay, the loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import TrainConfig
from ..data.transforms import IGNORE_INDEX


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


def segmentation_loss(logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy ignoring 255, averaged over labelled pixels (weighted like PyTorch's
    ``mean``). A batch with no labelled pixel gives 0, not NaN, and still backpropagates."""
    total = F.cross_entropy(
        logits, target, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum"
    )
    valid = target != IGNORE_INDEX
    if weight is None:
        denom = valid.sum()
    else:
        denom = weight[target[valid]].sum()
    if denom.item() == 0:
        return logits.sum() * 0.0
    return total / denom


def total_loss(
    outputs: dict[str, Tensor],
    target: Tensor,
    aux_weight: float,
    class_weights: Sequence[float] | None = None,
) -> Tensor:
    weight = None
    if class_weights is not None:
        weight = torch.as_tensor(class_weights, dtype=torch.float32, device=target.device)
    loss = segmentation_loss(outputs["out"].float(), target, weight)
    if "aux" in outputs:
        loss = loss + aux_weight * segmentation_loss(outputs["aux"].float(), target, weight)
    return loss
