"""Inference modes shared by evaluation and the Segmenter: whole image, sliding window, TTA."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..models.segmentation import SegmentationModel
from ..postprocess import upsample_argmax


def _logits(model: nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    return out["out"] if isinstance(out, dict) else out


def slide_logits(model: nn.Module, images: Tensor, crop: int, stride: int) -> Tensor:
    """Average the logits of ``crop × crop`` windows taken every ``stride`` pixels.

    Images smaller than the crop are padded with 0 (the normalised mean is not 0, but the
    padding is cropped away again and only borders see it).
    """
    if stride < 1 or crop < 1 or stride > crop:
        raise ValueError(f"sliding window needs 1 <= stride <= crop, got {crop=} {stride=}")
    n, _, h, w = images.shape
    ph, pw = max(crop - h, 0), max(crop - w, 0)
    padded = F.pad(images, (0, pw, 0, ph)) if ph or pw else images
    hp, wp = padded.shape[-2:]
    ys = list(range(0, max(hp - crop, 0) + 1, stride))
    xs = list(range(0, max(wp - crop, 0) + 1, stride))
    if ys[-1] + crop < hp:
        ys.append(hp - crop)
    if xs[-1] + crop < wp:
        xs.append(wp - crop)
    total: Tensor | None = None
    count = torch.zeros((1, 1, hp, wp), device=images.device)
    for y in ys:
        for x in xs:
            window = _logits(model, padded[:, :, y : y + crop, x : x + crop])
            if total is None:
                total = window.new_zeros((n, window.shape[1], hp, wp))
            total[:, :, y : y + crop, x : x + crop] += window
            count[:, :, y : y + crop, x : x + crop] += 1
    assert total is not None
    return (total / count)[:, :, :h, :w]


@torch.no_grad()
def predict_scores(
    model: nn.Module,
    images: Tensor,
    *,
    slide: tuple[int, int] | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> Tensor:
    """N×K×H×W class scores for normalised N×3×H×W images; argmax gives the labels.

    One pass (a single scale, no flip) returns logits; test-time augmentation (several
    scales and/or horizontal flips) returns the average of the softmax probabilities.
    """
    size = images.shape[-2:]

    def run(x: Tensor) -> Tensor:
        return slide_logits(model, x, *slide) if slide else _logits(model, x)

    if list(scales) == [1.0] and not flip:
        return run(images)
    total = None
    for scale in scales:
        x = images
        if scale != 1.0:
            target = [max(1, round(s * scale)) for s in size]
            x = F.interpolate(images, size=target, mode="bilinear", align_corners=False)
        views = [(x, False), (x.flip(-1), True)] if flip else [(x, False)]
        for view, flipped in views:
            logits = run(view)
            if flipped:
                logits = logits.flip(-1)
            if logits.shape[-2:] != size:
                logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
            probs = logits.float().softmax(1)
            total = probs if total is None else total + probs
    assert total is not None
    return total / (len(scales) * (2 if flip else 1))


@torch.no_grad()
def predict_labels(
    model: nn.Module,
    images: Tensor,
    *,
    slide: tuple[int, int] | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> Tensor:
    """N×H×W int64 labels: the argmax of :func:`predict_scores`. In the plain mode (whole
    image, one scale, no flip) a segmnv3 model's labels come from its low-resolution logits
    through :func:`segmnv3.postprocess.upsample_argmax`, which gives the same labels without
    the full-resolution logits."""
    if (
        slide is None
        and list(scales) == [1.0]
        and not flip
        and isinstance(model, SegmentationModel)
    ):
        low = model(images, upsample=False)["out"]
        return upsample_argmax(low, images.shape[-2:]).long()
    return predict_scores(model, images, slide=slide, scales=scales, flip=flip).argmax(1)
