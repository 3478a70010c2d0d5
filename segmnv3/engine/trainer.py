"""The training loop: per epoch, train, evaluate, save (the run itself: run.py).

Every random choice is a function of ``(seed, epoch, index)``: the sample order of an epoch
comes from a generator seeded with ``(seed, epoch)`` and each sample's augmentation from
``(seed, epoch, index)``. So a run resumed from a checkpoint replays exactly what the
uninterrupted run would have done (bit for bit on CPU with ``train.deterministic``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..checkpoint import load_checkpoint
from ..config import Config
from ..data.loader import pad_collate, worker_init
from ..device import resolve_device
from . import distributed as du
from .evaluation import evaluate
from .finetune import freeze_backbone
from .logs import RunLog, write_visuals
from .losses import total_loss
from .reproducible import epoch_indices
from .run import (
    Run,
    build_run,
    check_config,
    claim_run_name,
    resume_run,
    save_run,
    seed_everything,
)


class NonFiniteLossError(RuntimeError):
    pass


def _autocast(device: torch.device, amp: str):
    if amp == "none":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


@dataclass
class TrainResult:
    best_miou: float
    final_metrics: dict
    run_dir: Path
    seconds: float


def _epoch_loader(run: Run, epoch: int) -> DataLoader:
    """This epoch's batches, from where the run stands (mid-epoch after a resume)."""
    t, p = run.config.train, run.progress
    run.train_set.epoch = epoch
    order = epoch_indices(len(run.train_set), epoch, t.seed, du.rank(), du.world_size())
    order = order[: run.iters_per_epoch * t.batch_size][p.epoch_iter * t.batch_size :]
    return DataLoader(
        run.train_set,
        batch_size=t.batch_size,
        sampler=order,
        num_workers=run.config.data.num_workers,
        collate_fn=pad_collate,
        worker_init_fn=worker_init,
        generator=torch.Generator().manual_seed(t.seed * 7919 + epoch),
        drop_last=True,
        pin_memory=run.device.type == "cuda",
    )


def _step(run: Run, images: torch.Tensor, masks: torch.Tensor) -> float:
    """One optimisation step; returns the loss. A non-finite loss stops the run."""
    t, p = run.config.train, run.progress
    with _autocast(run.device, t.amp):
        outputs = run.net(images)
    loss = total_loss(outputs, masks, t.aux_weight, run.loss)
    if not torch.isfinite(loss):
        raise NonFiniteLossError(
            f"loss is {loss.item()} at iteration {p.iteration + 1} (epoch {p.epoch + 1}); "
            f"stopped. The last good checkpoint is {run.run_dir / 'last.pt'}"
        )
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if t.grad_clip:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.model.parameters(), t.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return loss.item()


def train_one_epoch(run: Run, show_progress: bool) -> dict:
    """Train to the end of the current epoch; returns its record for metrics.jsonl."""
    t, p, world = run.config.train, run.progress, du.world_size()
    epoch = p.epoch
    run.net.train()
    if run.progress.epoch < run.config.train.freeze_backbone_epochs:
        freeze_backbone(run.model, True)  # its BatchNorm statistics stay as loaded
    seen, loss_sum, data_time = 0, 0.0, 0.0
    t_epoch = tick = time.perf_counter()
    bar = tqdm(
        _epoch_loader(run, epoch),
        desc=f"epoch {epoch + 1}/{t.epochs}",
        initial=p.epoch_iter,
        total=run.iters_per_epoch,
        disable=not (show_progress and du.is_main()),
        dynamic_ncols=True,
    )
    for images, masks in bar:
        data_time += time.perf_counter() - tick
        images = images.to(run.device, non_blocking=True)
        masks = masks.to(run.device, non_blocking=True)
        if t.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        loss = _step(run, images, masks)
        p.iteration += 1
        p.epoch_iter += 1
        seen += images.shape[0]
        loss_sum += loss * images.shape[0]
        rate = seen * world / max(time.perf_counter() - t_epoch, 1e-9)
        lr = run.scheduler.get_last_lr()[0]
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", ips=f"{rate:.1f}")
        if t.checkpoint_interval and p.iteration % t.checkpoint_interval == 0:
            save_run(run, "last.pt")
        tick = time.perf_counter()
    bar.close()
    elapsed = max(time.perf_counter() - t_epoch, 1e-9)
    p.epoch, p.epoch_iter = epoch + 1, 0
    return {
        "epoch": epoch + 1,
        "iteration": p.iteration,
        "loss": loss_sum / max(seen, 1),
        "lr": run.scheduler.get_last_lr()[0],
        "images_per_s": seen * world / elapsed,
        "data_time_share": data_time / elapsed,
    }


def validate(run: Run, show_progress: bool) -> tuple[dict, bool]:
    """Score the val split, keep ``best.pt`` and count towards early stopping. Returns the
    metrics and whether to stop."""
    t, p = run.config.train, run.progress
    res = evaluate(
        run.model,
        run.val_set,
        len(run.classes),
        device=run.device,
        batch_size=t.val_batch_size,
        num_workers=run.config.data.num_workers,
        progress=show_progress,
        desc="val",
    )
    if res.metrics["mIoU"] > p.best_miou:
        p.best_miou, p.bad_evals = res.metrics["mIoU"], 0
        save_run(run, "best.pt")
        return res.metrics, False
    p.bad_evals += 1
    return res.metrics, 0 < t.early_stop_patience <= p.bad_evals


def _start_line(run: Run, resumed_from: Path | None) -> str:
    t, p = run.config.train, run.progress
    action = f"resuming from {resumed_from} at epoch {p.epoch + 1}" if resumed_from else "starting"
    data = run.config.data.dataset
    detected = getattr(run.train_set.dataset, "detected_layout", None)
    if detected:
        data = f"{data} (read as {detected})"
    return (
        f"{action}: {run.config.model.head} on {data} "
        f"({len(run.train_set)} train / {len(run.val_set)} val images, {len(run.classes)} "
        f"classes), {t.epochs} epochs × {run.iters_per_epoch} iterations, batch "
        f"{t.batch_size} × {du.world_size()} process(es), device {run.device}; "
        f"writing {run.run_dir}"
    )


def _finish(run: Run) -> None:
    """Pictures of the best model's val predictions."""
    best = run.run_dir / "best.pt"
    if du.is_main() and best.is_file():
        run.model.load_state_dict(load_checkpoint(best)["model"])
        t = run.config.train
        write_visuals(run.model, run.val_set, run.classes, run.palette, run.run_dir / "vis",
                      t.num_vis, run.device)  # fmt: skip


def train(
    config: Config,
    *,
    device: str | torch.device = "cpu",
    resume: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``config``; writes ``<out_dir>/<name>/``. ``resume``: ``"auto"`` (continue from
    the run's ``last.pt`` if it exists) or a checkpoint path. Without ``resume``, a name
    that holds an earlier run becomes ``<name>-2`` (``-3``, …; ``config.name`` is updated)."""
    start = time.perf_counter()
    device = resolve_device(device)
    check_config(config, device)
    seed_everything(config)
    taken = claim_run_name(config) if not resume else None
    if taken and du.is_main():
        print(f"{Path(config.out_dir) / taken} holds an earlier run (continue it with --resume "
              f"auto --name {taken}); this run is named {config.name}")  # fmt: skip
    run = build_run(config, device)
    resumed_from = resume_run(run, resume)
    log = RunLog(run.run_dir, config, resumed_at=run.progress.iteration if resumed_from else None)
    if du.is_main():
        print(_start_line(run, resumed_from))
    t, p = config.train, run.progress
    metrics: dict = {}
    stop = False
    while p.epoch < t.epochs and not stop:
        record = train_one_epoch(run, progress)
        if p.epoch % t.eval_interval == 0 or p.epoch == t.epochs:
            metrics, stop = validate(run, progress)
            record.update({f"val_{k}": v for k, v in metrics.items()})
        save_run(run, "last.pt")
        log.write(record, stopped_early=stop)
    du.barrier()
    _finish(run)
    log.close()
    seconds = time.perf_counter() - start
    if du.is_main() and metrics:
        print(
            f"done in {seconds:.0f} s: val mIoU {100 * metrics['mIoU']:.2f}, pixel accuracy "
            f"{100 * metrics['pixel_acc']:.2f} (best mIoU {100 * p.best_miou:.2f}); "
            f"checkpoints in {run.run_dir}"
        )
    return TrainResult(p.best_miou, metrics, run.run_dir, seconds)
