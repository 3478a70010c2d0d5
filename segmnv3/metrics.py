"""Segmentation metrics from one confusion matrix per split.

Rows are ground truth, columns predictions. mIoU is computed once from the summed matrix,
never as an average of per-batch values.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist


class ConfusionMatrix:
    """Accumulates a ``num_classes × num_classes`` confusion matrix.

    ``update(pred, target)`` takes integer label tensors of any (equal) shape on any device
    and counts there with ``bincount``. Pixels whose target is ``ignore_index`` or outside
    ``[0, num_classes)`` are skipped.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat: torch.Tensor | None = None
        self._reduced = False

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} != target {tuple(target.shape)}")
        n = self.num_classes
        pred, target = pred.reshape(-1), target.reshape(-1)
        keep = (target >= 0) & (target < n) & (target != self.ignore_index)
        t, p = target[keep].long(), pred[keep].long()
        if bool(((p < 0) | (p >= n)).any()):  # one device sync per update, not two
            raise ValueError(f"predictions must be class ids in [0, {n}), got {p.min()}…{p.max()}")
        counts = torch.bincount(t * n + p, minlength=n * n).reshape(n, n)
        if self.mat is None:
            self.mat = torch.zeros((n, n), dtype=torch.int64, device=counts.device)
        self.mat += counts.to(self.mat.device)
        self._reduced = False

    def all_reduce(self) -> None:
        """Sum the matrices of all processes, once; a no-op without torch.distributed."""
        if self._reduced or not (dist.is_available() and dist.is_initialized()):
            return
        if self.mat is None:
            self.mat = torch.zeros((self.num_classes,) * 2, dtype=torch.int64)
        # gloo reduces CPU tensors, nccl CUDA ones: move to the backend's device.
        device = torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")
        mat = self.mat.to(device)
        dist.all_reduce(mat)
        self.mat = mat
        self._reduced = True

    def compute(self) -> dict:
        """Plain Python metrics, fractions in [0, 1]; reduces across processes first.

        ``iou``/``acc`` hold one value per class: NaN for a class absent from both labels and
        predictions (IoU) or from the labels (accuracy), and such classes are left out of the
        means. A class predicted but never labelled has IoU 0.
        """
        self.all_reduce()
        n = self.num_classes
        h = (self.mat if self.mat is not None else torch.zeros(n, n)).double().cpu()
        tp = h.diag()
        labelled = h.sum(1)
        predicted = h.sum(0)
        union = labelled + predicted - tp
        iou = torch.where(union > 0, tp / union.clamp(min=1), torch.nan)
        acc = torch.where(labelled > 0, tp / labelled.clamp(min=1), torch.nan)
        total = labelled.sum()
        freq = labelled / total if total > 0 else labelled
        present = labelled > 0
        return {
            "mIoU": _nanmean(iou),
            "pixel_acc": float(tp.sum() / total) if total > 0 else math.nan,
            "mean_acc": _nanmean(acc),
            "fwIoU": float((freq[present] * iou[present]).sum()) if total > 0 else math.nan,
            "iou": iou.tolist(),
            "acc": acc.tolist(),
        }


def _nanmean(x: torch.Tensor) -> float:
    valid = ~torch.isnan(x)
    return float(x[valid].mean()) if valid.any() else math.nan


def json_ready(value):
    """``value`` with every NaN float (an absent class) as None, so that ``json.dumps``
    writes valid JSON (``null``) instead of the ``NaN`` that JSON has no word for."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
