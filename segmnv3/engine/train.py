"""The training loop: epochs, evaluation, checkpoints, resume, logging, DDP.

Every random choice is a function of ``(seed, epoch, index)``: the sample order of an epoch
comes from a generator seeded with ``(seed, epoch)`` and each sample's augmentation from
``(seed, epoch, index)``. So a run resumed from a checkpoint replays exactly what the
uninterrupted run would have done (bit for bit on CPU with ``train.deterministic``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import Config
from ..data.loader import pad_collate, worker_init
from ..models import build_model
from . import distributed as du
from .builders import eval_dataset, train_dataset
from .checkpoint import load_checkpoint, model_config, save_checkpoint
from .evaluate import evaluate
from .logs import RunLog, write_visuals
from .optim import build_optimizer, build_scheduler, total_loss
from .reproducible import EpochSeeded, epoch_indices, get_rng_state, set_rng_state


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


def _check(config: Config, device: torch.device) -> None:
    t = config.train
    if t.amp not in ("none", "fp16", "bf16"):
        raise ValueError(f"train.amp={t.amp!r}; choose none, fp16 or bf16")
    if t.amp == "fp16" and device.type != "cuda":
        raise ValueError("train.amp=fp16 needs CUDA; on CPU use train.amp=bf16")
    if t.sync_bn and device.type != "cuda":
        raise ValueError("train.sync_bn=true needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only")
    if t.epochs < 1 or t.batch_size < 1:
        raise ValueError("train.epochs and train.batch_size must be >= 1")


def train(
    config: Config,
    *,
    device: str | torch.device = "cpu",
    resume: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``config``; writes ``<out_dir>/<name>/``. ``resume``: ``"auto"`` (continue from
    the run's ``last.pt`` if it exists) or a checkpoint path."""
    start_time = time.perf_counter()
    device = torch.device(device)
    _check(config, device)
    t = config.train
    rank, world = du.rank(), du.world_size()
    run_dir = Path(config.out_dir) / config.name
    torch.manual_seed(t.seed + rank)
    np.random.seed(t.seed + rank)
    random.seed(t.seed + rank)
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False

    train_ds, val_ds = train_dataset(config), eval_dataset(config)
    classes, palette = list(train_ds.classes), list(train_ds.palette or [])
    if not palette:
        from ..viz import default_palette

        palette = default_palette(len(classes))
    model = build_model(
        **model_config(config, len(classes)), pretrained_backbone=config.model.pretrained_backbone
    )
    if t.sync_bn and world > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if t.channels_last:
        model.to(memory_format=torch.channels_last)
    net = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)

    seeded = EpochSeeded(train_ds, t.seed)
    iters_per_epoch = len(epoch_indices(len(train_ds), 0, t.seed, rank, world)) // t.batch_size
    if iters_per_epoch == 0:
        raise ValueError(
            f"{len(train_ds)} training samples give no full batch of {t.batch_size} per process"
        )
    total_iters = iters_per_epoch * t.epochs
    optimizer = build_optimizer(model, t)
    scheduler = build_scheduler(optimizer, t, total_iters)
    scaler = torch.amp.GradScaler(device.type, enabled=t.amp == "fp16")

    state = {"epoch": 0, "epoch_iter": 0, "iteration": 0, "best_miou": -1.0, "bad_evals": 0}
    ckpt_path = None
    if resume == "auto":
        ckpt_path = run_dir / "last.pt" if (run_dir / "last.pt").is_file() else None
    elif resume:
        ckpt_path = Path(resume)
    if ckpt_path is not None:
        ckpt = load_checkpoint(ckpt_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        for key in state:
            state[key] = ckpt[key]
        set_rng_state(ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0])

    log = RunLog(run_dir, config, resumed_at=state["iteration"] if ckpt_path else None)
    if du.is_main():
        action = (
            f"resuming from {ckpt_path} at epoch {state['epoch'] + 1}" if ckpt_path else "starting"
        )
        print(
            f"{action}: {config.model.head} on {config.data.dataset} ({len(train_ds)} train / "
            f"{len(val_ds)} val images, {len(classes)} classes), {t.epochs} epochs × "
            f"{iters_per_epoch} iterations, batch {t.batch_size} × {world} process(es), "
            f"device {device}; writing {run_dir}"
        )

    def checkpoint(name: str) -> None:
        rng = [None] * world
        if world > 1:
            torch.distributed.all_gather_object(rng, get_rng_state())
        else:
            rng = [get_rng_state()]
        if not du.is_main():
            return
        save_checkpoint(
            run_dir / name,
            {
                "model": model.state_dict(),
                "config": config.to_dict(),
                "classes": classes,
                "palette": [list(c) for c in palette],
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng,
                **state,
            },
        )

    metrics: dict = {}
    stop = False
    while state["epoch"] < t.epochs and not stop:
        epoch = state["epoch"]
        seeded.epoch = epoch
        order = epoch_indices(len(train_ds), epoch, t.seed, rank, world)
        order = order[: iters_per_epoch * t.batch_size][state["epoch_iter"] * t.batch_size :]
        loader = DataLoader(
            seeded,
            batch_size=t.batch_size,
            sampler=order,
            num_workers=config.data.num_workers,
            collate_fn=pad_collate,
            worker_init_fn=worker_init,
            generator=torch.Generator().manual_seed(t.seed * 7919 + epoch),
            drop_last=True,
            pin_memory=device.type == "cuda",
        )
        net.train()
        seen, loss_sum, data_time = 0, 0.0, 0.0
        t_epoch = tick = time.perf_counter()
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{t.epochs}",
            initial=state["epoch_iter"],
            total=iters_per_epoch,
            disable=not (progress and du.is_main()),
            dynamic_ncols=True,
        )
        for images, masks in bar:
            data_time += time.perf_counter() - tick
            images = images.to(device, non_blocking=True)
            masks = masks.to(device, non_blocking=True)
            if t.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with _autocast(device, t.amp):
                outputs = net(images)
            loss = total_loss(outputs, masks, t.aux_weight, t.class_weights)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss is {loss.item()} at iteration {state['iteration'] + 1} (epoch "
                    f"{epoch + 1}); stopped. The last good checkpoint is {run_dir / 'last.pt'}"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if t.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            state["iteration"] += 1
            state["epoch_iter"] += 1
            seen += images.shape[0]
            loss_sum += loss.item() * images.shape[0]
            rate = seen * world / max(time.perf_counter() - t_epoch, 1e-9)
            bar.set_postfix(
                loss=f"{loss.item():.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", ips=f"{rate:.1f}"
            )
            if t.checkpoint_interval and state["iteration"] % t.checkpoint_interval == 0:
                checkpoint("last.pt")
            tick = time.perf_counter()
        bar.close()
        elapsed = time.perf_counter() - t_epoch
        state["epoch"], state["epoch_iter"] = epoch + 1, 0
        record = {
            "epoch": epoch + 1,
            "iteration": state["iteration"],
            "loss": loss_sum / max(seen, 1),
            "lr": scheduler.get_last_lr()[0],
            "images_per_s": seen * world / max(elapsed, 1e-9),
            "data_time_share": data_time / max(elapsed, 1e-9),
        }
        if (epoch + 1) % t.eval_interval == 0 or epoch + 1 == t.epochs:
            res = evaluate(
                model,
                val_ds,
                len(classes),
                device=device,
                batch_size=t.val_batch_size,
                num_workers=config.data.num_workers,
                progress=progress,
                desc="val",
            )
            metrics = res.metrics
            record.update({f"val_{k}": v for k, v in metrics.items()})
            if metrics["mIoU"] > state["best_miou"]:
                state["best_miou"], state["bad_evals"] = metrics["mIoU"], 0
                checkpoint("best.pt")
            else:
                state["bad_evals"] += 1
                stop = 0 < t.early_stop_patience <= state["bad_evals"]
        checkpoint("last.pt")
        log.write(record, stopped_early=stop)
    du.barrier()
    if du.is_main() and (run_dir / "best.pt").is_file():
        best = load_checkpoint(run_dir / "best.pt")
        model.load_state_dict(best["model"])
        write_visuals(model, val_ds, palette, run_dir / "vis", t.num_vis, device)
    log.close()
    seconds = time.perf_counter() - start_time
    if du.is_main() and metrics:
        print(
            f"done in {seconds:.0f} s: val mIoU {100 * metrics['mIoU']:.2f}, pixel accuracy "
            f"{100 * metrics['pixel_acc']:.2f} (best mIoU {100 * state['best_miou']:.2f}); "
            f"checkpoints in {run_dir}"
        )
    return TrainResult(state["best_miou"], metrics, run_dir, seconds)
