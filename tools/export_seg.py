"""Export a checkpoint to ONNX (checked against PyTorch), optionally with a static int8 copy.

    python tools/export_seg.py --checkpoint runs/demo/best.pt --format onnx --output model.onnx
    python tools/export_seg.py --checkpoint runs/demo/best.pt --output model.onnx \\
        --int8 --calib dataset:val
"""

import argparse
import json
import sys

from segmnv3.data.io import write_bytes_atomic
from segmnv3.deploy import export_checkpoint


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--output", required=True, help="the .onnx file to write")
    p.add_argument("--int8", action="store_true", help="also write <output>.int8.onnx")
    p.add_argument("--calib", help="image folder, folder dataset, or dataset[:split]")
    p.add_argument("--calib-count", type=int, default=32, help="calibration images")
    p.add_argument("--speed-size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"))
    p.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    p.add_argument("--json", help="write the figures to this JSON file")
    args = p.parse_args()
    try:
        report = export_checkpoint(
            args.checkpoint,
            args.output,
            int8=args.int8,
            calib=args.calib,
            calib_count=args.calib_count,
            speed_size=tuple(args.speed_size),
            num_threads=args.threads,
        )
    except AssertionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        write_bytes_atomic(args.json, json.dumps(report, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
