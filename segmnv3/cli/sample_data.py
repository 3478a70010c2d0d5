"""Write a small dataset in an official layout from the synthetic generator.

segmnv3-sample-data --format cityscapes --out data/cityscapes_sample
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..data.samples import FORMATS, write_sample_data
from .common import ArgumentParser, positive_int, run_tool


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="make_sample_data.py", description=__doc__.splitlines()[0])
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--out", required=True, help="folder to write the tree into")
    p.add_argument("--train", type=int, default=8, help="number of train images")
    p.add_argument("--val", type=int, default=4, help="number of val images")
    p.add_argument("--test", type=int, default=0, help="test images (cityscapes only)")
    p.add_argument("--size", type=positive_int, nargs=2, default=(128, 256), metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    return p


def run(args: argparse.Namespace) -> Path:
    out = write_sample_data(args.format, args.out, args.train, args.val, tuple(args.size),
                            args.seed, args.test)  # fmt: skip
    print(f"wrote the {args.format} sample tree to {out}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)
