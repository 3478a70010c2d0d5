"""From the head's low-resolution logits to full-resolution class ids, without computing
the full-resolution logits.

``F.interpolate(logits, size, mode="bilinear").argmax(1)`` upsamples all K channels to every
output pixel and then reads them all again: for LR-ASPP at 1024×512 with 21 classes that
was a quarter of ONNX Runtime's graph time and most of PyTorch's post-processing. But a
bilinear value is a weighted mean (weights ≥ 0) of its four source pixels, so where the four
agree on the winning class, that class also wins everywhere between them. Only the pixels
whose four sources disagree (a few percent: the object boundaries) need their logits
interpolated; the rest take the shared label.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

# Above this fraction of cells with disagreeing corners (noise-like inputs), interpolating
# every pixel is cheaper than gathering blocks: about where the two cost the same at
# 1024×512 with 21 classes on the development machine (20 ms).
DENSE_ABOVE = 0.15


def label_dtype(num_classes: int) -> torch.dtype:
    """The dtype of class-id masks everywhere in segmnv3: uint8 up to 255 classes (255 is
    also "ignore"), int32 past that."""
    return torch.uint8 if num_classes <= 255 else torch.int32


def numpy_label_dtype(num_classes: int) -> type:
    """:func:`label_dtype` as a NumPy dtype."""
    return np.uint8 if num_classes <= 255 else np.int32


def _source_axis(out_len: int, in_len: int, device) -> tuple[Tensor, Tensor]:
    """Per output index: the first source index and the weights of the two sources, as
    ``F.interpolate(mode="bilinear", align_corners=False)`` computes them."""
    pos = torch.arange(out_len, dtype=torch.float32, device=device)
    src = ((pos + 0.5) * (in_len / out_len) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=in_len - 1)
    frac = src - i0
    return i0, torch.stack([1 - frac, frac], 1)


def _spans(i0: Tensor, in_len: int) -> tuple[Tensor, Tensor]:
    """For each source index i, the output indices whose first source is i, padded to the
    longest run: (in_len × L indices, in_len × L validity)."""
    counts = torch.bincount(i0, minlength=in_len)
    starts = torch.cumsum(counts, 0) - counts
    offsets = torch.arange(int(counts.max()), device=i0.device)
    valid = offsets[None] < counts[:, None]
    index = (starts[:, None] + offsets[None]).clamp(max=len(i0) - 1)
    return index, valid


def _next_index(n: int, device) -> Tensor:
    """i + 1 for each index i, clamped at the last one (the second source pixel)."""
    return (torch.arange(n, device=device) + 1).clamp(max=n - 1)


def _cells(logits: Tensor) -> tuple[Tensor, Tensor]:
    """The low-resolution labels, and for each cell (the square between source pixels
    (i, j) and (i + 1, j + 1), clamped at the border) whether its four corners agree. Every
    output pixel lies in the cell of its first sources (y0, x0)."""
    h, w = logits.shape[-2:]
    labels = logits.max(1).indices  # the first maximum, as argmax; faster over dim 1
    down, right = _next_index(h, logits.device), _next_index(w, logits.device)
    below = labels[:, down]
    agree = (labels == labels[:, :, right]) & (labels == below) & (labels == below[:, :, right])
    return labels, agree


def interpolated_fraction(logits: Tensor) -> float:
    """The fraction of cells whose corners disagree, which :func:`upsample_argmax` has to
    interpolate (it interpolates everything above ``DENSE_ABOVE``)."""
    return 1.0 - _cells(logits)[1].float().mean().item()


def upsample_argmax(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """The class ids of ``logits`` (N×K×h×w, any real dtype; quantized uint8 logits too, as
    dequantization keeps their order) bilinearly upsampled to ``size``, as
    ``F.interpolate(logits, size, mode="bilinear", align_corners=False).argmax(1)`` gives
    them (ties go to the lower class id in both). Returns N×H×W uint8 ids (int32 with more
    than 255 classes)."""
    n, k, h, w = logits.shape
    out_h, out_w = size
    device = logits.device
    y0, wy = _source_axis(out_h, h, device)
    x0, wx = _source_axis(out_w, w, device)

    labels, agree = _cells(logits)
    dtype = label_dtype(k)
    ids = labels.to(dtype).index_select(1, y0).index_select(2, x0)
    b, ci, cj = (~agree).nonzero(as_tuple=True)
    if len(b) == 0:
        return ids
    if len(b) > DENSE_ABOVE * agree.numel():
        return _dense(logits, size, dtype)

    # Cells whose corners disagree: interpolate their logits, one padded block per cell.
    down, right = _next_index(h, device), _next_index(w, device)
    rows, row_ok = _spans(y0, h)  # h × R output rows per cell row
    cols, col_ok = _spans(x0, w)  # w × C output columns per cell column
    t = logits.float().permute(0, 2, 3, 1)  # N×h×w×K
    corners = t[b[:, None, None], torch.stack([ci, down[ci]], 1)[:, :, None],
                torch.stack([cj, right[cj]], 1)[:, None, :]]  # fmt: skip  # M×2×2×K
    ry, cx = rows[ci], cols[cj]  # M×R, M×C
    # Along x first, then y, in the order F.interpolate sums (same rounding).
    across = torch.einsum("mcb,mabk->mack", wx[cx], corners)  # M×2×C×K
    values = torch.einsum("mra,mack->mrck", wy[ry], across)  # M×R×C×K
    best = values.argmax(3).to(dtype)
    ok = row_ok[ci][:, :, None] & col_ok[cj][:, None, :]
    m_idx = b[:, None, None].expand_as(ok)
    ids[m_idx[ok], ry[:, :, None].expand_as(ok)[ok], cx[:, None, :].expand_as(ok)[ok]] = best[ok]
    return ids


def _dense(logits: Tensor, size: tuple[int, int], dtype: torch.dtype) -> Tensor:
    """Every pixel interpolated: on the CPU one channel at a time with OpenCV (whose
    INTER_LINEAR samples at the same half-pixel positions), keeping a running maximum, which
    needs neither the K×H×W tensor nor an argmax across it."""
    out_h, out_w = size
    if logits.device.type != "cpu":
        up = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
        return up.argmax(1).to(dtype)
    planes = logits.detach().float().numpy()
    ids = np.zeros((len(planes), out_h, out_w), numpy_label_dtype(logits.shape[1]))
    for image, out in zip(planes, ids, strict=True):
        best = cv2.resize(image[0], (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        for c in range(1, len(image)):
            value = cv2.resize(image[c], (out_w, out_h), interpolation=cv2.INTER_LINEAR)
            out[value > best] = c  # strictly greater: ties stay with the lower class id
            np.maximum(best, value, out=best)
    return torch.from_numpy(ids)
