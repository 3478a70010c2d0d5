"""Evaluation: the loop that fills a ConfusionMatrix, result writers, and the per-class table."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.cityscapes import TRAIN_ID_TO_ID
from ..data.io import write_png
from ..data.loader import pad_collate, worker_init
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..metrics import ConfusionMatrix
from ..viz import colorize, overlay
from . import distributed as du
from .infer import predict_labels


@dataclass
class EvalResult:
    metrics: dict  # ConfusionMatrix.compute()
    matrix: np.ndarray  # the summed confusion matrix (rows: truth)
    images: int  # images scored, over all processes
    seconds: float  # wall time of the loop
    metric_seconds: float  # time spent in ConfusionMatrix.update (this process)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset,
    num_classes: int,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    num_workers: int = 2,
    slide: tuple[int, int] | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    on_prediction: Callable[[int, torch.Tensor, np.ndarray], None] | None = None,
    progress: bool = True,
    desc: str = "eval",
) -> EvalResult:
    """Score ``model`` on ``dataset`` (items after an eval preset: normalised image, int64
    mask). Under torch.distributed each process takes its own shard (no image twice) and
    the matrices are summed once. ``on_prediction(index, image, pred)`` sees every image."""
    device = torch.device(device)
    model.eval()
    sampler = du.ShardSampler(len(dataset))
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=pad_collate,
        worker_init_fn=worker_init,
    )
    indices = list(sampler)
    cm = ConfusionMatrix(num_classes)
    metric_seconds, seen = 0.0, 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, disable=not (progress and du.is_main()), dynamic_ncols=True)
    for images, masks in bar:
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        preds = predict_labels(model, images, slide=slide, scales=scales, flip=flip)
        _sync(device)
        t0 = time.perf_counter()
        cm.update(preds, masks)
        _sync(device)
        metric_seconds += time.perf_counter() - t0
        if on_prediction is not None:
            for k in range(images.shape[0]):
                on_prediction(indices[seen + k], images[k].cpu(), preds[k].cpu().numpy())
        seen += images.shape[0]
    count = torch.tensor([seen], dtype=torch.int64)
    if du.is_distributed():
        count = count.to(_reduce_device())
        torch.distributed.all_reduce(count)
    metrics = cm.compute()
    return EvalResult(
        metrics=metrics,
        matrix=cm.mat.cpu().numpy(),
        images=int(count.sum()),
        seconds=time.perf_counter() - start,
        metric_seconds=metric_seconds,
    )


def _reduce_device() -> torch.device:
    backend = torch.distributed.get_backend()
    return torch.device("cuda") if backend == "nccl" else torch.device("cpu")


def denormalize(image: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """Normalised 3×H×W tensor → RGB uint8 H×W×3 (for pictures of predictions)."""
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    rgb = (image.float().cpu() * s + m).clamp(0, 1) * 255
    return rgb.round().byte().permute(1, 2, 0).numpy()


class PredictionWriter:
    """Writes what evaluation predicts, per image:

    - ``save_dir``: ``raw/<name>.png`` (class ids), ``color/<name>.png``, ``overlay/<name>.png``;
    - ``cityscapes_dir``: ``<city>_<seq>_<frame>.png`` of Cityscapes *label* ids, the format
      of the official benchmark (csEvalPixelLevelSemanticLabeling).
    """

    def __init__(
        self,
        dataset,
        palette: Sequence[Sequence[int]],
        save_dir: str | Path | None = None,
        cityscapes_dir: str | Path | None = None,
    ) -> None:
        self.dataset, self.palette = dataset, palette
        self.save_dir = Path(save_dir) if save_dir else None
        self.cityscapes_dir = Path(cityscapes_dir) if cityscapes_dir else None

    def __call__(self, index: int, image: torch.Tensor, pred: np.ndarray) -> None:
        name = self.dataset.filename(index)
        pred = pred.astype(np.uint8) if pred.max(initial=0) < 256 else pred
        if self.save_dir is not None:
            write_png(self.save_dir / "raw" / f"{name}.png", pred)
            write_png(self.save_dir / "color" / f"{name}.png", colorize(pred, self.palette))
            picture = overlay(denormalize(image), pred, self.palette)
            write_png(self.save_dir / "overlay" / f"{name}.png", picture)
        if self.cityscapes_dir is not None:
            write_png(self.cityscapes_dir / f"{name}.png", TRAIN_ID_TO_ID[pred])


def format_table(metrics: dict, classes: Sequence[str]) -> str:
    """The per-class table (IoU, accuracy in %) and the summary lines."""
    width = max(12, *(len(c) for c in classes))

    def pct(v: float) -> str:
        return "   n/a" if v is None or math.isnan(v) else f"{100 * v:6.2f}"

    lines = [f"{'class':<{width}}   IoU %  Acc %", "-" * (width + 16)]
    for name, iou, acc in zip(classes, metrics["iou"], metrics["acc"], strict=True):
        lines.append(f"{name:<{width}}  {pct(iou)} {pct(acc)}")
    lines.append("-" * (width + 16))
    lines.append(f"{'mIoU':<{width}}  {pct(metrics['mIoU'])}")
    lines.append(f"{'pixel acc':<{width}}  {pct(metrics['pixel_acc'])}")
    lines.append(f"{'mean acc':<{width}}  {pct(metrics['mean_acc'])}")
    lines.append(f"{'fwIoU':<{width}}  {pct(metrics['fwIoU'])}")
    return "\n".join(lines)
