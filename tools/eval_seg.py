"""Evaluate a segmentation checkpoint: per-class IoU, mIoU and pixel accuracy.

python tools/eval_seg.py --checkpoint runs/demo/best.pt --json metrics.json
torchrun --nproc_per_node=2 tools/eval_seg.py --checkpoint runs/demo/best.pt
"""

import argparse
import sys

from segmnv3.engine import distributed as du
from segmnv3.engine.run_eval import run_eval


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="segmnv3 checkpoint or torchvision .pth")
    p.add_argument("--config", help="YAML config to use instead of the checkpoint's")
    p.add_argument("--dataset", help="dataset name (cityscapes, coco, folder, synthetic)")
    p.add_argument("--data-root", help="dataset root folder")
    p.add_argument("--split", help="split to evaluate (default: the config's val split)")
    p.add_argument("--resize", type=int, help="resize the shorter side to N (COCO protocol: 520)")
    p.add_argument("--slide", type=int, nargs=2, metavar=("CROP", "STRIDE"), help="sliding window")
    p.add_argument("--tta", action="store_true", help="average flips and scales")
    p.add_argument("--scales", type=float, nargs="+", help="TTA scales (default 0.75 1 1.25)")
    p.add_argument("--device", default=du.default_device())
    p.add_argument("--workers", type=int, help="data loader workers")
    p.add_argument("--json", help="write the metrics to this JSON file")
    p.add_argument("--save-pred", help="write raw masks, colour masks and overlays here")
    p.add_argument("--cityscapes-results", help="write label-id PNGs for the official evaluator")
    p.add_argument("--plot-confusion", help="draw the normalised confusion matrix to this PNG")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. data.num_workers=0")
    args = p.parse_args()
    du.init_distributed(args.device)
    try:
        run_eval(
            args.checkpoint,
            config_path=args.config,
            overrides=args.overrides,
            dataset=args.dataset,
            data_root=args.data_root,
            split=args.split,
            resize=args.resize,
            slide=tuple(args.slide) if args.slide else None,
            tta=args.tta,
            scales=args.scales,
            device=args.device,
            num_workers=args.workers,
            json_path=args.json,
            save_pred=args.save_pred,
            cityscapes_results=args.cityscapes_results,
            plot_confusion=args.plot_confusion,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    finally:
        du.cleanup()


if __name__ == "__main__":
    main()
