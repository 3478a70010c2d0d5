"""What a training run writes besides checkpoints: config.yaml, metrics.jsonl, TensorBoard
events (when the tensorboard package is installed), epoch lines and prediction pictures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from ..data.transforms import denormalize
from ..io import write_bytes_atomic, write_png
from ..viz import draw_legend, overlay
from . import distributed as du
from .evaluation import predict_labels


class RunLog:
    """Only the main process writes. On resume, records past the checkpoint are dropped so
    that ``metrics.jsonl`` reads as one clean run."""

    def __init__(self, run_dir: Path, config: Config, resumed_at: int | None) -> None:
        self.run_dir, self.writer = run_dir, None
        self.path = run_dir / "metrics.jsonl"
        if not du.is_main():
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.yaml")
        kept = []
        if resumed_at is not None and self.path.is_file():
            for line in self.path.read_text().splitlines():
                if line.strip() and json.loads(line).get("iteration", 0) <= resumed_at:
                    kept.append(line)
        write_bytes_atomic(self.path, "".join(f"{line}\n" for line in kept).encode())
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=resumed_at)
        except Exception:  # tensorboard not installed: the JSON lines still hold everything
            self.writer = None

    def write(self, record: dict, stopped_early: bool = False) -> None:
        if not du.is_main():
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        line = (
            f"epoch {record['epoch']}: loss {record['loss']:.4f}, lr {record['lr']:.2e}, "
            f"{record['images_per_s']:.1f} img/s, data {100 * record['data_time_share']:.0f}%"
        )
        if "val_mIoU" in record:
            line += (
                f" | val mIoU {100 * record['val_mIoU']:.2f}, "
                f"pixel acc {100 * record['val_pixel_acc']:.2f}"
            )
        print(line + (" | early stop" if stopped_early else ""), flush=True)
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, float) and not math.isnan(value):
                    self.writer.add_scalar(key, value, record["iteration"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@torch.no_grad()
def write_visuals(model, dataset, classes, palette, out_dir: Path, count: int, device) -> None:
    """For the first ``count`` items: image | ground truth overlay | prediction overlay,
    each overlay with a key of the classes in it."""
    model.eval()
    for i in range(min(count, len(dataset))):
        image, mask = dataset[i]
        pred = predict_labels(model, image[None].to(device))[0].cpu().numpy()
        rgb = denormalize(image)
        truth, guess = mask.numpy().astype(np.uint8), pred.astype(np.uint8)
        truth = draw_legend(overlay(rgb, truth, palette), truth, classes, palette)
        guess = draw_legend(overlay(rgb, guess, palette), guess, classes, palette)
        gap = np.full((rgb.shape[0], 4, 3), 255, np.uint8)
        write_png(
            out_dir / f"{dataset.filename(i)}.png",
            np.concatenate([rgb, gap, truth, gap, guess], axis=1),
        )
