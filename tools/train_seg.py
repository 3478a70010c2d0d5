"""Train a segmentation model. With no config it trains on the built-in synthetic data.

python tools/train_seg.py --head lraspp
python tools/train_seg.py --config configs/lraspp_cityscapes.yaml --data-root DATA/cityscapes
torchrun --nproc_per_node=4 tools/train_seg.py --config configs/lraspp_coco.yaml
"""

import argparse
import sys

from segmnv3.config import load_config
from segmnv3.engine import distributed as du
from segmnv3.engine.train import NonFiniteLossError, train
from segmnv3.models import HEADS


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", help="YAML config (default: the synthetic demo)")
    p.add_argument("--head", choices=sorted(HEADS), help="overrides model.head")
    p.add_argument("--data-root", help="overrides data.root")
    p.add_argument("--name", help="run name (overrides name): writes runs/<name>/")
    p.add_argument("--resume", help="'auto' (runs/<name>/last.pt if present) or a checkpoint")
    p.add_argument("--device", default=du.default_device())
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="dotted key=value, e.g. train.epochs=3")
    args = p.parse_args()
    overrides = list(args.overrides)
    if args.head:
        overrides.insert(0, f"model.head={args.head}")
    if args.data_root:
        overrides.insert(0, f"data.root={args.data_root}")
    if args.name:
        overrides.insert(0, f"name={args.name}")
    try:
        config = load_config(args.config, overrides)
    except (KeyError, TypeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    du.init_distributed(args.device)
    try:
        train(
            config,
            device=args.device,
            resume=args.resume,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        du.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
