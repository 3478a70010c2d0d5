"""Predict masks for images: files, folders or globs in, PNGs of class ids out.

python tools/predict_seg.py --checkpoint runs/demo/best.pt photos/ --out masks/ --overlay
"""

import argparse
import sys

from segmnv3.engine import distributed as du
from segmnv3.inference import Segmenter
from segmnv3.predict import predict_files


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--checkpoint", required=True, help=".pt checkpoint or exported .onnx")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    p.add_argument("--device", default=du.default_device())
    p.add_argument("--color", action="store_true", help="also write colour masks")
    p.add_argument("--overlay", action="store_true", help="also write overlays")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    try:
        seg = Segmenter.from_checkpoint(args.checkpoint, args.device, args.backend)
        show = not args.no_progress and sys.stderr.isatty()
        written = predict_files(
            seg, args.inputs, args.out, color=args.color, overlay=args.overlay, progress=show
        )
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} masks to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
