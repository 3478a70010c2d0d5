"""Labels at the input size inside a phone file, in ops the XNNPACK delegate runs.

``F.interpolate(logits, scale_factor=f, mode="bilinear").argmax(1)`` costs a phone file
11–45 ms: the K-channel upsampling writes K full-size planes, and neither ExecuTorch nor
LiteRT delegates ``argmax``, so it runs on the runtimes' portable kernels. :class:`CellArgmax`
gives the same labels from the stride-f logits with a few full-size passes, all delegated:

- With ``align_corners=False`` each f×f block of output pixels lies in one *cell*, the square
  between four neighbouring logits (the edges replicated). A pixel's logits are a fixed
  bilinear mix of its cell's four corners.
- Per cell, at low resolution, pick the classes that can win in it: the class that wins at
  the cell's centre (the corners' sum) and the two that beat it by most at some corner. For
  each, the difference to the first class at the four corners is mixed into the f² pixels
  by one matrix product; the pixels compare those differences. No class outside the three
  can win where the four corners agree, so labels differ from the reference only in the rare
  cells where four or more classes meet (0–0.02 % of pixels on the demo model).
- argmax and one-hot are written as max-pooling, products and clamps (``relu6``); ties go
  to the lower class id, as ``torch.argmax`` sends them.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn
from torch.nn import functional as F

BIG = 2.0**120  # a step: x·BIG clamps to 0 or 6 for any |x| > 5e-36 (inf clamps too)
TIE = 2.0**-40  # favours the lower class id when two classes' values are exactly equal


def cell_weights(f: int) -> torch.Tensor:
    """4×f²: a cell's corners (top-left, top-right, bottom-left, bottom-right) → the bilinear
    weights of its f×f pixels, row by row. Exact in fp32 for f a power of two."""
    frac = (torch.arange(f, dtype=torch.float64) + 0.5) / f
    w = torch.stack([1 - frac, frac])  # 2×f: near corner, far corner
    return torch.einsum("ay,bx->abyx", w, w).reshape(4, f * f).float()


def _pooled_max(x: torch.Tensor) -> torch.Tensor:
    """The max over the last axis (keepdim), by max pooling: ExecuTorch's XNNPACK delegate
    takes max_pool2d but not amax. The cells are the pooling's channels (its NHWC kernel
    runs over them in vector lanes): 0.11 ms → 0.004 ms a max at 512×1024, where one channel
    of cells × K pixels was scalar work."""
    *lead, k = x.shape
    return F.max_pool2d(x.reshape(1, -1, k, 1), (k, 1)).reshape(*lead, 1)


def _reduced_max(x: torch.Tensor) -> torch.Tensor:
    """The max over the last axis (keepdim): LiteRT's REDUCE_MAX, faster there than pooling."""
    return x.amax(-1, keepdim=True)


def _step(x: torch.Tensor) -> torch.Tensor:
    """1 where x > 0, else 0, exactly (relu6 gives 0 or 6, and 6·(1/6) rounds to 1 in fp32),
    as a clamp the runtimes fuse into their ops."""
    return F.relu6(x * BIG) * (1.0 / 6.0)


class CellArgmax(nn.Module):
    """1×K×h×w logits → 1×(f·h)×(f·w) class ids, as bilinear ×f upsampling then argmax give
    them but in cells where four or more classes meet. ``f`` must be even. ``dtype``: uint8,
    or int8 for ExecuTorch, whose delegate converts to int8 but not to uint8 (its portable
    uint8 cast takes 7 ms at 512×1024); ``runtime``: "executorch" or "litert", the op each
    delegate runs fastest for a max over classes."""

    def __init__(self, classes: int, factor: int, dtype: torch.dtype = torch.uint8,
                 runtime: str = "litert"):  # fmt: skip
        super().__init__()
        if factor % 2 or factor < 2:
            raise ValueError(f"CellArgmax: the upsampling factor {factor} must be even")
        if dtype == torch.int8 and classes > 127:
            raise ValueError(f"CellArgmax: {classes} classes do not fit int8 ids")
        if dtype == torch.int8:  # registers torch.ops.quantized_decomposed
            importlib.import_module("torch.ao.quantization.fx._decomposed")
        self.f, self.dtype, self.candidates = factor, dtype, min(3, classes)
        self.last_max = _pooled_max if runtime == "executorch" else _reduced_max
        self.register_buffer("weights", cell_weights(factor), persistent=False)
        ids = torch.arange(classes, dtype=torch.float32)
        self.register_buffer("ids", ids.view(-1, 1), persistent=False)
        upper = torch.triu(torch.ones(classes, classes))  # running count of ones, by id
        self.register_buffer("upper", upper, persistent=False)
        self.register_buffer("ones", torch.ones(classes, 1), persistent=False)

    def _first_max(self, s: torch.Tensor) -> torch.Tensor:
        """One-hot of the last axis' max, the lowest id among equal maxima."""
        hits = F.relu6((s - self.last_max(s)) * BIG + 6.0) * (1.0 / 6.0)
        return hits * F.relu(2.0 - hits @ self.upper)

    def _at_corners(self, corners, select: torch.Tensor) -> list[torch.Tensor]:
        """1×(h+1)×(w+1)×1 per corner: ``select`` (a one-hot, or a difference of two) applied
        to the classes there, corner by corner. A 4×K stack times a broadcast ``select``
        costs the runtimes a copy and a 5-D broadcast (0.2–0.9 ms more at 512×1024)."""
        return [(c * select) @ self.ones for c in corners]

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        n, k, h, w = logits.shape
        if n != 1:
            raise ValueError(f"CellArgmax takes one image, not a batch of {n}")
        f, half = self.f, self.f // 2
        if k == 1:
            return torch.zeros(1, f * h, f * w, dtype=self.dtype)
        p = logits.permute(0, 2, 3, 1)  # 1×h×w×K
        p = torch.cat([p[:, :1], p, p[:, -1:]], 1)
        p = torch.cat([p[:, :, :1], p, p[:, :, -1:]], 2)  # edges replicated: 1×(h+2)×(w+2)×K
        corners = (p[:, :-1, :-1], p[:, :-1, 1:], p[:, 1:, :-1], p[:, 1:, 1:])
        first = self._first_max(corners[0] + corners[1] + corners[2] + corners[3])
        ahead = [c - a for c, a in zip(corners, self._at_corners(corners, first), strict=True)]
        lead = torch.maximum(torch.maximum(ahead[0], ahead[1]), torch.maximum(ahead[2], ahead[3]))
        # lead: by most each class beats the first at one of the cell's corners
        best, taken, others, margins = first @ self.ids, first, [], []
        for _ in range(self.candidates - 1):  # the classes that beat the first by most
            other = self._first_max(lead - BIG * taken)
            taken, c = taken + other, other @ self.ids
            # L_best − L_other at each of the cell's f² pixels
            margins.append(torch.cat(self._at_corners(corners, first - other), -1) @ self.weights)
            others.append(c)
        runner_up, margin = others[0], margins[0]
        if len(others) == 2:  # the stronger of the two others, and how far the first leads it
            second = _step(margins[1] - margins[0] + (others[1] - others[0]) * TIE)
            runner_up = others[1] + (others[0] - others[1]) * second
            margin = torch.minimum(margins[0], margins[1])
        # exact ties go to the lower id, as in torch.argmax
        labels = runner_up + (best - runner_up) * _step(margin + (runner_up - best) * TIE)
        labels = labels.reshape(1, h + 1, w + 1, f, f).permute(0, 1, 3, 2, 4)
        labels = labels.reshape(1, (h + 1) * f, (w + 1) * f)[:, half:-half, half:-half]
        if self.dtype == torch.int8:  # the delegate's own conversion, rounding to nearest
            return torch.ops.quantized_decomposed.quantize_per_tensor(
                labels, 1.0, 0, -128, 127, torch.int8
            )
        return labels.to(self.dtype)  # whole numbers: the steps are exactly 0 or 1
