"""Benchmark segmnv3 against torchvision's eager models, side by side in one process.

segmnv3-bench --json bench.json
segmnv3-bench --heads lraspp --sizes 512x1024 --skip-data --skip-train
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ..device import cpu_features
from ..inference import Segmenter, installed_backends
from ..io import write_bytes_atomic
from ..perf.batch import ray_batch
from ..perf.deployed import DEPLOYED_SUFFIXES, deployed_file, end_to_end, peak_memory
from ..perf.latency import TABLE_HEADER, inference_table, label_upsampling
from ..perf.mobile import MOBILE_SIZES, mobile_rows
from ..perf.serving import serving_load
from ..perf.throughput import data_loading, train_step
from ..perf.video import video_throughput
from ..timing import matmul_rate
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
    p.add_argument("--skip-table", action="store_true", help="no random-weight latency table")
    p.add_argument(
        "--checkpoint",
        default="runs/demo/best.pt",
        help="model for the end-to-end rows on a sample scene (skipped if absent); an exported "
        ".onnx/.pte/.tflite is timed as it ships, on its own runtime",
    )
    p.add_argument("--skip-video", action="store_true", help="no video frames/s rows")
    p.add_argument("--video-frames", type=positive_int, default=300)
    p.add_argument("--serve", action="store_true",
                   help="also HTTP load figures at 1, 4 and 16 clients")  # fmt: skip
    p.add_argument("--mobile", action="store_true",
                   help="phone files: ExecuTorch .pte and LiteRT .tflite, fp32 and int8, beside "
                   "ONNX Runtime and OpenVINO, 1 and 2 threads (needs --checkpoint)")  # fmt: skip
    p.add_argument("--mobile-sizes", nargs="+", type=_size, default=list(MOBILE_SIZES),
                   help="HxW of the phone files (default 512x512 512x1024)")  # fmt: skip
    p.add_argument("--ray-images", type=positive_int, metavar="N",
                   help="also batch prediction of N JPEGs (1024x512): one process against "
                   "--ray local with 1 and 2 actors (needs --checkpoint)")  # fmt: skip
    p.add_argument("--ray-turns", type=positive_int, default=1)
    p.add_argument("--memory", action="store_true",
                   help="also each runtime's peak memory for one 2048x1024 image")  # fmt: skip
    p.add_argument("--json", dest="json_path", help="write all figures to this JSON file")
    return p


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    cpu = cpu_features()
    print(f"CPU flags: {cpu.describe()} (native bf16: {cpu.bf16}, VNNI: {cpu.vnni}); torch "
          f"{torch.__version__}, {args.threads} threads; runtimes: "
          f"{', '.join(installed_backends())}")  # fmt: skip
    report: dict = {"threads": args.threads, "cpu_flags": cpu.describe()}
    report["matmul_gflops"] = {"fp32": matmul_rate(torch.float32)}
    if cpu.bf16:
        report["matmul_gflops"]["bf16"] = matmul_rate(torch.bfloat16)
    rates = [f"{rate:.0f} GFLOP/s {kind}" for kind, rate in report["matmul_gflops"].items()]
    print(f"compute limit: a 2048×2048 matrix product at {', '.join(rates)}")
    if not args.skip_table:
        print(TABLE_HEADER)
        report["inference"] = inference_table(
            args.heads, args.sizes, repeats=args.repeats, threads=args.threads,
            int8=not args.no_int8,
        )  # fmt: skip
    if Path(args.checkpoint).suffix.lower() in DEPLOYED_SUFFIXES:  # the file that ships
        report["deployed_file"] = deployed_file(args.checkpoint, args.sizes, args.threads,
                                                args.repeats)  # fmt: skip
    elif Path(args.checkpoint).is_file():
        report["end_to_end"] = end_to_end(args.checkpoint, args.sizes, threads=args.threads,
                                          repeats=args.repeats)  # fmt: skip
        if not args.skip_video:
            seg = Segmenter.from_checkpoint(args.checkpoint, num_threads=args.threads)
            report["video"] = video_throughput(seg, frames=args.video_frames)
        if args.serve:
            report["serving"] = serving_load(args.checkpoint, threads=args.threads)
        if args.mobile:
            report["mobile"] = mobile_rows(args.checkpoint, args.mobile_sizes, repeats=args.repeats)
        if args.ray_images:
            report["batch"] = ray_batch(args.checkpoint, args.ray_images, threads=args.threads,
                                        turns=args.ray_turns)  # fmt: skip
    else:
        print(f"no {args.checkpoint}: end-to-end rows skipped (train the demo first)")
    report["postprocess_ms"] = label_upsampling()
    if args.memory:
        report["peak_memory_mib"] = peak_memory()
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
