"""Benchmark segmnv3 against torchvision's eager models, side by side in one process.

segmnv3-bench --json bench.json
segmnv3-bench --heads lraspp --sizes 512x1024 --skip-data --skip-train
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch

from ..data.io import write_bytes_atomic
from ..perf.latency import TABLE_HEADER, inference_table, label_upsampling
from ..perf.throughput import data_loading, train_step
from .common import ArgumentParser, positive_int, run_tool


def _size(text: str) -> tuple[int, int]:
    h, sep, w = text.lower().partition("x")
    if not sep or not h.isdigit() or not w.isdigit() or int(h) < 1 or int(w) < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} is not HxW, e.g. 512x1024")
    return int(h), int(w)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="bench_seg.py", description=__doc__.splitlines()[0])
    p.add_argument("--heads", nargs="+", choices=("lraspp", "deeplabv3"),
                   default=["lraspp", "deeplabv3"])  # fmt: skip
    p.add_argument("--sizes", nargs="+", type=_size, default=[(512, 1024), (1024, 2048)],
                   help="HxW (default 512x1024 1024x2048)")  # fmt: skip
    p.add_argument("--repeats", type=positive_int, default=6)
    p.add_argument("--threads", type=positive_int, default=torch.get_num_threads())
    p.add_argument("--no-int8", action="store_true")
    p.add_argument("--skip-data", action="store_true")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--json", dest="json_path", help="write all figures to this JSON file")
    return p


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads\n{TABLE_HEADER}")
    report = {
        "threads": args.threads,
        "inference": inference_table(
            args.heads,
            args.sizes,
            repeats=args.repeats,
            threads=args.threads,
            int8=not args.no_int8,
        ),  # fmt: skip
        "postprocess_ms": label_upsampling(),
    }
    if not args.skip_data:
        report["data_loading_samples_per_s"] = data_loading()
    if not args.skip_train:
        report["train_images_per_s"] = train_step()
    if args.json_path:
        write_bytes_atomic(args.json_path, json.dumps(report, indent=2).encode())
        print(f"figures written to {args.json_path}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)
