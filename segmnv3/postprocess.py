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


def _chunks(i0: Tensor, in_len: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The output indices grouped by their first source index i, in chunks of at most L
    (the usual run, ceil(out / in); a border run, longer by the clamped half pixel, takes
    two chunks instead of widening every block). Returns per source index its first chunk
    and its chunk count, and per chunk its L output indices and their validity."""
    device, length = i0.device, max(1, -(-len(i0) // in_len))
    counts = torch.bincount(i0, minlength=in_len)
    starts = torch.cumsum(counts, 0) - counts
    n_chunks = (counts + length - 1) // length
    first = torch.cumsum(n_chunks, 0) - n_chunks
    cell = torch.repeat_interleave(torch.arange(in_len, device=device), n_chunks)
    begin = starts[cell] + (torch.arange(len(cell), device=device) - first[cell]) * length
    index = begin[:, None] + torch.arange(length, device=device)
    valid = index < (starts + counts)[cell][:, None]
    return first, n_chunks, index.clamp(max=len(i0) - 1), valid


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
    b, ci, cj = (~agree).nonzero(as_tuple=True)
    if len(b) > DENSE_ABOVE * agree.numel():
        return _dense(logits, size, dtype)
    flat = _base_labels(labels.to(dtype), y0, x0, size)  # N·H·W ids and a spare slot
    if len(b) == 0:
        return flat[:-1].view(n, out_h, out_w)

    # Cells whose corners disagree: interpolate their logits, one padded block per cell.
    down, right = _next_index(h, device), _next_index(w, device)
    t = logits.float().permute(0, 2, 3, 1)  # N×h×w×K
    y1, x1 = down[ci], right[cj]
    corners = torch.stack([t[b, ci, cj], t[b, ci, x1], t[b, y1, cj], t[b, y1, x1]], 1)  # M×4×K
    rows, cols = _chunks(y0, h), _chunks(x0, w)
    can_win = _can_win(corners)
    count = can_win.sum(1)
    # Most boundary cells have two candidate classes; a few have many: with many classes,
    # group by count so that the few don't pad every block to their width.
    groups = ((0, 2), (2, 4), (4, k)) if k > 6 and int(count.max()) > 4 else ((0, k),)
    for low_count, high_count in groups:
        sel = ((count > low_count) & (count <= high_count)).nonzero()[:, 0]
        if len(sel) == len(b):
            _fill_blocks(flat, corners, can_win, (b, ci, cj), rows, cols, (wy, wx), size)
        elif len(sel):
            cells = (b[sel], ci[sel], cj[sel])
            _fill_blocks(flat, corners[sel], can_win[sel], cells, rows, cols, (wy, wx), size)
    return flat[:-1].view(n, out_h, out_w)


def _base_labels(labels: Tensor, y0: Tensor, x0: Tensor, size: tuple[int, int]) -> Tensor:
    """Each output pixel's label from the low-resolution labels (right wherever its cell's
    corners agree), flat, with one spare slot at the end for padded writes.

    Upsampling on the CPU, OpenCV's nearest neighbour (source floor(x · in / out)) picks
    one of the pixel's two first sources x0 and x0 + 1, since x · s and (x + ½) · s − ½
    differ by less than ½ for a scale s ≤ 1; in an agreeing cell both carry its label.
    It takes half the time of two index_selects."""
    n, (h, w), (out_h, out_w) = len(labels), labels.shape[1:], size
    if labels.device.type != "cpu" or labels.dtype != torch.uint8 or h > out_h or w > out_w:
        ids = labels.index_select(1, y0).index_select(2, x0)
        return torch.cat([ids.reshape(-1), ids.new_zeros(1)])
    flat = np.empty(n * out_h * out_w + 1, np.uint8)
    planes = labels.numpy()
    for i in range(n):
        out = flat[i * out_h * out_w : (i + 1) * out_h * out_w].reshape(out_h, out_w)
        cv2.resize(planes[i], (out_w, out_h), dst=out, interpolation=cv2.INTER_NEAREST)
    return torch.from_numpy(flat)


def _fill_blocks(flat, corners, can_win, cells, rows, cols, weights, size) -> None:
    """Interpolate the candidate classes of each cell at its output pixels and write the
    winners into ``flat`` (the N·H·W mask and a spare slot)."""
    b, ci, cj = cells
    out_h, out_w = size
    wy, wx = weights
    corners, classes = _candidates(corners, can_win)  # M×4×T, M×T
    # One block per (row chunk, column chunk) of each cell: usually one, two at a border.
    ny, nx = rows[1][ci], cols[1][cj]
    m = torch.repeat_interleave(torch.arange(len(b), device=b.device), ny * nx)
    local = torch.arange(len(m), device=b.device) - (torch.cumsum(ny * nx, 0) - ny * nx)[m]
    chunk_y, chunk_x = rows[0][ci[m]] + local // nx[m], cols[0][cj[m]] + local % nx[m]
    ry, row_ok, cx, col_ok = rows[2][chunk_y], rows[3][chunk_y], cols[2][chunk_x], cols[3][chunk_x]
    c00, c01, c10, c11 = (corners[m, i, None] for i in range(4))  # B×1×T each
    ax, ay = wx[cx], wy[ry]  # B×C×2, B×R×2: the weights of the two sources
    # Along x first, then y, in the order F.interpolate sums (same rounding).
    upper = ax[:, :, :1] * c00 + ax[:, :, 1:] * c01  # B×C×T
    lower = ax[:, :, :1] * c10 + ax[:, :, 1:] * c11
    values = ay[:, :, 0, None, None] * upper[:, None] + ay[:, :, 1, None, None] * lower[:, None]
    pick = values.argmax(3)  # B×R×C positions among the candidates
    best = classes[m].gather(1, pick.view(len(m), -1)).view_as(pick).to(flat.dtype)
    ok = row_ok[:, :, None] & col_ok[:, None, :]
    index = (b[m, None, None] * out_h + ry[:, :, None]) * out_w + cx[:, None, :]
    flat[torch.where(ok, index, len(flat) - 1).reshape(-1)] = best.reshape(-1)


def _can_win(corners: Tensor) -> Tensor:
    """M×K: the classes that can win somewhere in each cell of M×4×K corner logits.

    A pixel's logit of class c is a weighted mean of c's four corner logits, so it is at most
    their maximum, and the winner's is at least max over c of c's smallest corner logit. A
    class whose largest corner logit is below that bound never wins; in a trained model's
    boundary cells two to four of 21 classes remain."""
    bound = corners.min(1).values.max(1, keepdim=True).values  # M×1
    return corners.max(1).values >= bound


def _candidates(corners: Tensor, can_win: Tensor) -> tuple[Tensor, Tensor]:
    """The corner logits of the classes that can win, in ascending id order (so argmax
    ties still go to the lower id): M×4×T (padded below every corner where a cell has fewer
    than T candidates) and their M×T class ids."""
    t = int(can_win.sum(1).max())
    k = corners.shape[2]
    order = (~can_win).to(torch.int64) * k + torch.arange(k, device=corners.device)
    classes = order.topk(t, dim=1, largest=False, sorted=True).indices  # M×T, ascending ids
    kept = can_win.gather(1, classes)
    picked = corners.gather(2, classes[:, None].expand(-1, 4, -1))
    # The padding gets a value below every corner (finite: a zero weight times -inf is NaN).
    floor = corners.amin((1, 2)).view(-1, 1, 1) - 1
    return torch.where(kept[:, None], picked, floor), classes


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
