"""The training loss: cross-entropy that ignores 255, plus the auxiliary head's share."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from ..preprocess import IGNORE_INDEX


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
