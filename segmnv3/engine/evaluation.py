"""Evaluation: the modes (whole image, sliding window, TTA), the loop that fills a
ConfusionMatrix, the prediction writer and the per-class table."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.cityscapes import TRAIN_ID_TO_ID
from ..data.loader import pad_collate, worker_init
from ..data.transforms import denormalize
from ..io import write_png
from ..metrics import ConfusionMatrix
from ..models import SegmentationModel
from ..postprocess import numpy_label_dtype, upsample_argmax
from ..viz import colorize, overlay
from . import distributed as du


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
    the full-resolution logits. ``model`` may also be a runtime backend
    (:class:`segmnv3.inference.Backend`, plain mode only): the deployed model scored."""
    plain = slide is None and list(scales) == [1.0] and not flip
    if hasattr(model, "lowres_logits"):  # a runtime backend: what Segmenter runs
        if not plain:
            raise ValueError("sliding window and TTA run on the torch backend (--backend torch)")
        low = model.lowres_logits(images.cpu().numpy())
        return upsample_argmax(low, images.shape[-2:]).long().to(images.device)
    if plain and isinstance(model, SegmentationModel):
        low = model(images, upsample=False)["out"]
        return upsample_argmax(low, images.shape[-2:]).long()
    return predict_scores(model, images, slide=slide, scales=scales, flip=flip).argmax(1)


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
    if isinstance(model, nn.Module):
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
        pred = pred.astype(numpy_label_dtype(len(self.palette)))
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
