"""What a training run is made of: built from a config, resumed from a checkpoint, saved.

A checkpoint holds the model, optimizer, schedule and scaler states, the resolved config,
the class names and palette, every process's RNG states and the run's :class:`Progress`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_checkpoint, model_args, save_checkpoint
from ..config import Config
from ..models import build_model
from ..viz import default_palette
from . import distributed as du
from .builders import eval_dataset, train_dataset
from .finetune import load_for_finetuning
from .losses import LossFn, build_loss
from .optim import build_optimizer, build_scheduler
from .reproducible import EpochSeeded, epoch_indices, get_rng_state, set_rng_state


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint (its keys are top-level ones there)."""

    epoch: int = 0  # epochs finished
    epoch_iter: int = 0  # iterations done in the current epoch
    iteration: int = 0  # iterations done in all
    best_miou: float = -1.0
    bad_evals: int = 0  # evaluations since the best one (early stopping)


@dataclass
class Run:
    """Everything a training run is made of, built once by :func:`build_run`."""

    config: Config
    device: torch.device
    run_dir: Path
    train_set: EpochSeeded
    val_set: object
    classes: list[str]
    palette: list
    model: nn.Module  # the model itself (its state dict is what is saved)
    net: nn.Module  # what the forward pass calls: the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    iters_per_epoch: int
    loss: LossFn  # train.loss with train.class_weights
    progress: Progress = field(default_factory=Progress)


def check_config(config: Config, device: torch.device) -> None:
    """What the config's own checks cannot know: the device (its values are checked when
    the config is loaded)."""
    t = config.train
    if t.amp == "fp16" and device.type != "cuda":
        raise ValueError("train.amp=fp16 needs CUDA; on CPU use train.amp=bf16")
    if t.sync_bn and device.type != "cuda":
        raise ValueError("train.sync_bn=true needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only")
    build_loss(t.loss, t.class_weights)  # an unknown loss or option fails before any data


def seed_everything(config: Config) -> None:
    t = config.train
    seed = t.seed + du.rank()
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def build_run(config: Config, device: torch.device) -> Run:
    """Datasets, model (wrapped for DDP under torchrun), optimizer, schedule and scaler."""
    t = config.train
    train_ds, val_ds = train_dataset(config), eval_dataset(config)
    classes = list(train_ds.classes)
    palette = list(train_ds.palette or []) or default_palette(len(classes))
    if t.class_weights is not None and len(t.class_weights) != len(classes):
        raise ValueError(
            f"train.class_weights has {len(t.class_weights)} values but {config.data.dataset} "
            f"has {len(classes)} classes ({', '.join(classes)})"
        )
    model = build_model(
        **model_args(config, len(classes)), pretrained_backbone=config.model.pretrained_backbone
    )
    if config.model.weights:
        load_for_finetuning(model, config.model.weights, classes,
                            log=print if du.is_main() else lambda _: None)  # fmt: skip
    world = du.world_size()
    if t.sync_bn and world > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if t.channels_last:
        model.to(memory_format=torch.channels_last)
    net = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    per_process = len(epoch_indices(len(train_ds), 0, t.seed, du.rank(), world))
    iters_per_epoch = per_process // t.batch_size
    if iters_per_epoch == 0:
        raise ValueError(
            f"{len(train_ds)} training samples give no full batch of {t.batch_size} per process"
        )
    optimizer = build_optimizer(model, t)
    return Run(
        config=config,
        device=device,
        run_dir=Path(config.out_dir) / config.name,
        train_set=EpochSeeded(train_ds, t.seed),
        val_set=val_ds,
        classes=classes,
        palette=palette,
        model=model,
        net=net,
        optimizer=optimizer,
        scheduler=build_scheduler(
            optimizer, t, iters_per_epoch * t.epochs, iters_per_epoch * t.freeze_backbone_epochs
        ),  # fmt: skip
        scaler=torch.amp.GradScaler(device.type, enabled=t.amp == "fp16"),
        iters_per_epoch=iters_per_epoch,
        loss=build_loss(t.loss, t.class_weights),
    )


def resume_run(run: Run, resume: str | Path | None) -> Path | None:
    """Restore model, optimizer, schedule, scaler, progress and RNG states from ``resume``
    (``"auto"``: the run's ``last.pt`` if it exists). Returns the checkpoint used, if any."""
    path = None
    if resume == "auto":
        path = run.run_dir / "last.pt" if (run.run_dir / "last.pt").is_file() else None
    elif resume:
        path = Path(resume)
    if path is None:
        return None
    ckpt = load_checkpoint(path)
    _check_resumable(ckpt, run, path)
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt["scaler"])
    run.progress = Progress(**{key: ckpt[key] for key in asdict(Progress())})
    rank = du.rank()
    set_rng_state(ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0])
    return path


def _check_resumable(ckpt: dict, run: Run, path: Path) -> None:
    """The checkpoint must be a training checkpoint of this network, with epochs left."""
    missing = [k for k in ("optimizer", "scheduler", "rng", "epoch", "config") if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a training checkpoint to resume (no {', '.join(missing)})")
    saved = ckpt["config"].get("model", {})
    for key in ("head", "backbone", "reduced_tail", "dilated", "width_mult", "aux"):
        ours = getattr(run.config.model, key)
        if key in saved and saved[key] != ours:
            raise ValueError(
                f"{path} was trained with model.{key}={saved[key]!r}, this run has {ours!r}: "
                "resume with the same model, or start a new run (another --name)"
            )
    if len(ckpt.get("classes", run.classes)) != len(run.classes):
        raise ValueError(
            f"{path} predicts {len(ckpt['classes'])} classes, this run's data has "
            f"{len(run.classes)}: resume on the same dataset, or start a new run"
        )
    epochs = run.config.train.epochs
    if ckpt["epoch"] >= epochs:
        raise ValueError(
            f"{path} has finished all {epochs} epochs: raise train.epochs to train on, or start "
            "a new run (another --name)"
        )


RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "config.yaml")


def fresh_name(out_dir: str | Path, name: str, files: tuple[str, ...] = RUN_FILES) -> str:
    """``name``, or when ``<out_dir>/<name>`` holds another run's ``files``, the first free
    ``<name>-2``, ``<name>-3``, …: a new run never replaces another run's files."""

    def taken(candidate: str) -> bool:
        return any((Path(out_dir) / candidate / f).exists() for f in files)

    if not taken(name):
        return name
    n = 2
    while taken(f"{name}-{n}"):
        n += 1
    return f"{name}-{n}"


def claim_run_name(config: Config) -> str | None:
    """Give a new run a name no earlier run holds (decided on rank 0, shared with the
    others). Returns the name it replaced, if any."""
    name = [fresh_name(config.out_dir, config.name) if du.is_main() else None]
    if du.world_size() > 1:
        torch.distributed.broadcast_object_list(name, src=0)
    if name[0] == config.name:
        return None
    old, config.name = config.name, name[0]
    return old


def save_run(run: Run, name: str) -> None:
    """Write ``<run_dir>/<name>`` (rank 0; every rank's RNG state is gathered into it)."""
    world = du.world_size()
    rng = [None] * world
    if world > 1:
        torch.distributed.all_gather_object(rng, get_rng_state())
    else:
        rng = [get_rng_state()]
    if not du.is_main():
        return
    state = {
        "model": run.model.state_dict(),
        "config": run.config.to_dict(),
        "model_args": model_args(run.config, len(run.classes)),
        "classes": run.classes,
        "palette": [list(c) for c in run.palette],
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "rng": rng,
        **asdict(run.progress),
    }
    save_checkpoint(run.run_dir / name, state)
