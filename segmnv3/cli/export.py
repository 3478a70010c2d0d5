"""Export a checkpoint to ONNX, ExecuTorch or LiteRT (checked in its runtime), optionally int8.

segmnv3-export --checkpoint runs/demo/best.pt --format onnx --output model.onnx
segmnv3-export --checkpoint runs/demo/best.pt --output model.onnx --int8 --calib dataset:val
segmnv3-export --checkpoint runs/demo/best.pt --format executorch --size 512x1024 \
    --output model.pte --int8 --calib dataset:val
segmnv3-export --checkpoint runs/demo/best.pt --format tflite --size 512x1024 \
    --output model.tflite --int8 --calib dataset:val
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..engine.deploy import export_checkpoint, share_checkpoint
from ..engine.mobile_deploy import export_mobile
from ..io import write_bytes_atomic
from .common import ArgumentParser, add_model_source, positive_int, run_tool


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="export_seg.py", description=__doc__.splitlines()[0])
    add_model_source(p, "segmnv3 checkpoint or torchvision .pth")
    p.add_argument("--format", choices=("onnx", "executorch", "tflite", "weights"),
                   default="onnx", help="onnx; executorch (.pte) or tflite (LiteRT), XNNPACK, "
                   "for phones; or weights: "
                   "<name>-<sha256>.pth + a JSON card to share")  # fmt: skip
    p.add_argument(
        "--output", required=True, help="the .onnx, .pte or .tflite file, or a folder (weights)"
    )
    p.add_argument("--size", type=_size, default=(512, 1024), metavar="HxW",
                   help="phone formats: the fixed input size (default 512x1024)")  # fmt: skip
    p.add_argument(
        "--input-layout",
        choices=("nhwc", "nchw"),
        default="nhwc",
        help="phone formats: the input's layout (default nhwc, as camera frames are)",
    )
    p.add_argument("--normalized-input", action="store_true",
                   help="phone formats: the app passes ImageNet-normalised float32 (default: raw "
                   "RGB bytes, normalised in the graph: uint8, typed int8 on "
                   "ExecuTorch)")  # fmt: skip
    p.add_argument("--labels-out", action="store_true",
                   help="phone formats: class ids at the input size (upsampling and argmax in "
                   "the graph; uint8, int8 on ExecuTorch) instead of low-resolution "
                   "logits")  # fmt: skip
    p.add_argument("--name", help="weights: the name to share them under (default: run name)")
    p.add_argument("--license", default="", help="weights: the licence written in the card")
    p.add_argument("--int8", action="store_true", help="also write <stem>.int8.onnx/.pte/.tflite")
    p.add_argument("--calib", help="image folder, folder dataset, or dataset[:split]")
    p.add_argument("--int8-weight-bits", default="7", choices=("7", "8", "auto"),
                   help="int8 weights: 7 (default) is right on every x86 CPU; 8 only on CPUs "
                   "with VNNI (AVX512_VNNI / AVX_VNNI), where it can be a little more accurate; "
                   "auto: 8 when this machine has VNNI")  # fmt: skip
    p.add_argument("--calib-count", type=positive_int, default=32, help="calibration images")
    p.add_argument("--speed-size", type=positive_int, nargs=2, default=(512, 1024),
                   metavar=("H", "W"))  # fmt: skip
    p.add_argument("--threads", type=positive_int, help="ONNX Runtime intra-op threads")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--json", dest="json_path", help="write the figures to this JSON file")
    return p


def _size(text: str) -> tuple[int, int]:
    h, sep, w = text.lower().partition("x")
    if not sep or not h.isdigit() or not w.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HxW, e.g. 512x1024")
    return int(h), int(w)


def run(args: argparse.Namespace) -> dict:
    if args.format in ("executorch", "tflite"):
        report = export_mobile(args.checkpoint, args.output, fmt=args.format, weights=args.weights,
                               size=args.size, layout=args.input_layout,
                               normalized=args.normalized_input, labels_out=args.labels_out,
                               int8=args.int8, calib=args.calib or "dataset:val",
                               calib_count=args.calib_count, overwrite=args.overwrite)  # fmt: skip
        if args.json_path:
            write_bytes_atomic(args.json_path, json.dumps(report, indent=2).encode())
        return report
    if args.format == "weights":
        if args.checkpoint is None:
            raise ValueError("--format weights shares a --checkpoint (known weights are shared)")
        return share_checkpoint(args.checkpoint, args.output, name=args.name,
                                license=args.license)  # fmt: skip
    report = export_checkpoint(
        args.checkpoint,
        args.output,
        weights=args.weights,
        int8=args.int8,
        calib=args.calib,
        calib_count=args.calib_count,
        weight_bits=args.int8_weight_bits,
        speed_size=tuple(args.speed_size),
        num_threads=args.threads,
        overwrite=args.overwrite,
    )
    if args.json_path:
        write_bytes_atomic(args.json_path, json.dumps(report, indent=2).encode())
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)
