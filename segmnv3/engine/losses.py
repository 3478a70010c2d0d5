"""Training losses, all ignoring 255 and honouring ``train.class_weights``: cross-entropy
(the default), OHEM cross-entropy (the hardest pixels), Dice, focal and Lovász-softmax, or a
weighted sum of them (``train.loss``), plus the auxiliary head's share."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from ..preprocess import IGNORE_INDEX

LossFn = Callable[[Tensor, Tensor], Tensor]


def _weighted_mean(per_pixel: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    """Mean of per-pixel losses over labelled pixels, weighted by their class's weight (as
    PyTorch's ``mean`` with ``weight``). No labelled pixel: 0 that still backpropagates."""
    valid = target != IGNORE_INDEX
    w = (
        valid.float()
        if weight is None
        else torch.where(valid, weight[target.clamp(max=len(weight) - 1)], 0.0)
    )
    denom = w.sum()
    if denom.item() == 0:
        return per_pixel.sum() * 0.0
    return (per_pixel * w).sum() / denom


def cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy ignoring 255, averaged over labelled pixels (weighted like PyTorch's
    ``mean``). A batch with no labelled pixel gives 0, not NaN, and still backpropagates."""
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")
    return _weighted_mean(per_pixel, target, weight)


segmentation_loss = cross_entropy  # the name earlier releases used


def ohem_cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None, *,
                       thresh: float = 0.7, min_kept: int = 100_000) -> Tensor:  # fmt: skip
    """Cross-entropy over the hard pixels only (online hard example mining, as PaddleSeg's
    and mmseg's OHEM): those whose probability of the true class is below ``thresh``, and at
    least the ``min_kept`` hardest of the labelled ones."""
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")
    valid = target != IGNORE_INDEX
    prob = torch.exp(-per_pixel.detach())  # the true class's probability
    prob = torch.where(valid, prob, torch.full_like(prob, 2.0))  # ignored: never kept
    kept_count = int(valid.sum())
    if kept_count == 0:
        return logits.sum() * 0.0
    k = min(max(min_kept, 1), kept_count)
    kth = prob.flatten().kthvalue(k).values  # the k-th hardest pixel's probability
    hard = valid & (prob <= torch.clamp(kth, min=thresh))
    masked = torch.where(hard, target, torch.full_like(target, IGNORE_INDEX))
    return _weighted_mean(per_pixel, masked, weight)


def focal_loss(logits: Tensor, target: Tensor, weight: Tensor | None = None, *,
               gamma: float = 2.0) -> Tensor:  # fmt: skip
    """Focal loss ``-(1 - p)^gamma · log p`` of the true class (Lin et al.); gamma 0 is
    cross-entropy. Averaged like :func:`cross_entropy`."""
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")
    p = torch.exp(-ce)
    return _weighted_mean((1 - p) ** gamma * ce, target, weight)


def _present_classes(target: Tensor, num_classes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Softmax-ready one-hot of the labelled pixels: (valid N×H×W, one-hot N×K×H×W, the
    classes present in the labels)."""
    valid = target != IGNORE_INDEX
    onehot = F.one_hot(torch.where(valid, target, 0), num_classes).permute(0, 3, 1, 2).float()
    onehot = onehot * valid[:, None]
    present = onehot.sum((0, 2, 3)) > 0
    return valid, onehot, present


def _class_mean(per_class: Tensor, present: Tensor, weight: Tensor | None) -> Tensor:
    w = present.float() if weight is None else present.float() * weight
    if w.sum().item() == 0:
        return per_class.sum() * 0.0
    return (per_class * w).sum() / w.sum()


def dice_loss(logits: Tensor, target: Tensor, weight: Tensor | None = None, *,
              smooth: float = 0.0, eps: float = 1e-7) -> Tensor:  # fmt: skip
    """1 − the soft Dice coefficient per class, averaged over the classes present in the
    labels (weighted by ``weight``), over the labelled pixels; a perfect prediction gives 0."""
    valid, onehot, present = _present_classes(target, logits.shape[1])
    probs = logits.float().softmax(1) * valid[:, None]
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (2 * inter + smooth) / (total + smooth).clamp(min=eps)
    return _class_mean(1 - dice, present, weight)


def _lovasz_grad(sorted_fg: Tensor) -> Tensor:
    """The gradient of the Lovász extension of the Jaccard loss at the sorted errors."""
    gts = sorted_fg.sum()
    intersection = gts - sorted_fg.cumsum(0)
    union = gts + (1 - sorted_fg).cumsum(0)
    jaccard = 1 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def lovasz_softmax(logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """The Lovász-softmax loss (Berman et al. 2018), a smooth surrogate of 1 − IoU per class,
    over the labelled pixels of the batch, averaged over the classes present."""
    valid, onehot, present = _present_classes(target, logits.shape[1])
    probs = logits.float().softmax(1).permute(0, 2, 3, 1)[valid]  # P×K
    fg_all = onehot.permute(0, 2, 3, 1)[valid]
    per_class = torch.zeros(logits.shape[1], device=logits.device)
    for c in present.nonzero()[:, 0].tolist():
        errors = (fg_all[:, c] - probs[:, c]).abs()
        order = errors.argsort(descending=True)
        per_class[c] = errors[order] @ _lovasz_grad(fg_all[order, c])
    return _class_mean(per_class, present, weight)


LOSSES: dict[str, Callable[..., Tensor]] = {
    "ce": cross_entropy,
    "ohem": ohem_cross_entropy,
    "dice": dice_loss,
    "focal": focal_loss,
    "lovasz": lovasz_softmax,
}
_OPTIONS = {"ce": (), "ohem": ("thresh", "min_kept"), "dice": ("smooth", "eps"),
            "focal": ("gamma",), "lovasz": ()}  # fmt: skip


def build_loss(spec: str | Sequence[dict], class_weights: Sequence[float] | None = None) -> LossFn:
    """``train.loss`` as a function of (logits, target): a name of ``LOSSES``, or a list of
    ``{name, weight, <options>}`` whose weighted sum is the loss. Errors list the valid
    names and options."""
    terms = [{"name": spec}] if isinstance(spec, str) else list(spec)
    if not terms:
        raise ValueError(f"train.loss: an empty list; give one of {', '.join(LOSSES)}")
    parsed = []
    for i, term in enumerate(terms):
        where = "train.loss" if isinstance(spec, str) else f"train.loss[{i}]"
        if not isinstance(term, dict) or term.get("name") not in LOSSES:
            name = term.get("name") if isinstance(term, dict) else term
            raise ValueError(f"{where}: unknown loss {name!r}; choose one of "
                             f"{', '.join(LOSSES)} (or a list of {{name, weight}})")  # fmt: skip
        options = {k: v for k, v in term.items() if k not in ("name", "weight")}
        unknown = sorted(set(options) - set(_OPTIONS[term["name"]]))
        if unknown:
            valid = ", ".join(_OPTIONS[term["name"]]) or "none"
            raise ValueError(f"{where}: unknown option {', '.join(unknown)} for "
                             f"{term['name']!r}; valid: {valid}")  # fmt: skip
        share = term.get("weight", 1.0)
        if not isinstance(share, int | float) or share < 0:
            raise ValueError(f"{where}: weight {share!r} is not a number >= 0")
        parsed.append((LOSSES[term["name"]], float(share), options))

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        weight = None
        if class_weights is not None:
            weight = torch.as_tensor(class_weights, dtype=torch.float32, device=target.device)
        logits = logits.float()
        return sum(share * fn(logits, target, weight, **opts) for fn, share, opts in parsed)

    return loss


def total_loss(outputs: dict[str, Tensor], target: Tensor, aux_weight: float,
               loss: LossFn) -> Tensor:  # fmt: skip
    """The main head's loss plus ``aux_weight`` times the auxiliary head's."""
    value = loss(outputs["out"], target)
    if "aux" in outputs:
        value = value + aux_weight * loss(outputs["aux"], target)
    return value
