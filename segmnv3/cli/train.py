"""Train a segmentation model. With no config it trains on the built-in synthetic data.

segmnv3-train --head lraspp
segmnv3-train --config configs/lraspp_cityscapes.yaml --data-root DATA/cityscapes
torchrun --nproc_per_node=4 tools/train_seg.py --config configs/lraspp_coco.yaml
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..config import load_config
from ..device import default_device
from ..engine import distributed as du
from ..engine.trainer import TrainResult, train
from ..models import HEADS
from .common import ArgumentParser, run_tool, show_progress


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="train_seg.py", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="YAML config (default: the synthetic demo)")
    p.add_argument("--head", choices=sorted(HEADS), help="overrides model.head")
    p.add_argument("--data-root", help="overrides data.root")
    p.add_argument("--name", help="run name (overrides name): writes runs/<name>/")
    p.add_argument("--weights", help="fine-tune from a whole model (overrides model.weights): "
                   "a registry name, a torchvision file or another run's best.pt")  # fmt: skip
    p.add_argument("--resume", help="'auto' (runs/<name>/last.pt if present) or a checkpoint")
    p.add_argument("--device", default=default_device())
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="dotted key=value, e.g. train.epochs=3")
    return p


def run(args: argparse.Namespace) -> TrainResult:
    """Resolve the config from the flags and overrides, then train."""
    overrides = list(args.overrides)
    for key, value in (("model.head", args.head), ("data.root", args.data_root),
                       ("name", args.name), ("model.weights", args.weights)):  # fmt: skip
        if value:
            overrides.insert(0, f"{key}={value}")
    config = load_config(args.config, overrides)
    du.init_distributed(args.device)
    try:
        return train(
            config, device=args.device, resume=args.resume, progress=show_progress(args.no_progress)
        )
    finally:
        du.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)
