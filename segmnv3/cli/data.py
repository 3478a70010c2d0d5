"""Check a dataset before training on it: layout, splits, classes, pixel shares, sizes, problems.

segmnv3-data check data/my_export
segmnv3-data check data/voc --format voc --out checks/voc
segmnv3-data check data/masks --format folder --option "mask_values={255: 1}"
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import yaml
from tqdm import tqdm

from ..data import DATASETS, describe
from ..data.check import DataReport, check_dataset
from ..engine.run import fresh_name
from ..io import write_png
from ..viz import bar_chart, sample_sheet
from .common import ArgumentParser, positive_int, run_tool

PICTURES = ("class_pixels.png", "samples.png")


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="data_seg.py", description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["check"], help="check: report on a dataset folder")
    check = p
    check.add_argument("root", help="the dataset's folder (for ultralytics, or its YAML)")
    check.add_argument("--format", default="auto", choices=sorted(DATASETS),
                       help="the layout (default: detected)")  # fmt: skip
    check.add_argument("--option", type=_option, action="append", default=[], metavar="K=V",
                       help="an adapter option, e.g. labels=labels.txt (YAML value)")  # fmt: skip
    check.add_argument("--out", help="folder for the pictures (default: a new "
                       "data_check/<root's name>)")  # fmt: skip
    check.add_argument("--samples", type=positive_int, default=4, help="images in samples.png")
    check.add_argument("--no-progress", action="store_true")
    return p


def _table(report: DataReport) -> list[str]:
    pixels = report.pixels()
    total = max(int(pixels.sum()), 1)
    images = sum(s.count for s in report.splits.values())
    seen = sum(s.images_with for s in report.splits.values())
    width = max([len(c) for c in report.classes] + [8])
    lines = [f"{'id':>4}  {'class':<{width}}  {'pixels':>12}  {'share':>7}  images"]
    for k, name in enumerate(report.classes):
        lines.append(f"{k:>4}  {name:<{width}}  {int(pixels[k]):>12,}  "
                     f"{100 * pixels[k] / total:>6.2f}%  {int(seen[k])}/{images}")  # fmt: skip
    lines.append(f"{255:>4}  {'(ignore)':<{width}}  {int(pixels[-1]):>12,}  "
                 f"{100 * pixels[-1] / total:>6.2f}%  {int(seen[255])}/{images}")  # fmt: skip
    return lines


def _sizes(report: DataReport) -> str:
    sizes: Counter = Counter()
    for split in report.splits.values():
        sizes += split.sizes
    common = ", ".join(f"{w}×{h} ({n})" for (w, h), n in sizes.most_common(5))
    more = f" and {len(sizes) - 5} other sizes" if len(sizes) > 5 else ""
    return f"image sizes: {common or 'none read'}{more}"


def _pictures(report: DataReport, out: Path) -> list[Path]:
    if not report.classes or not report.splits:
        return []
    pixels = report.pixels()
    shares = (pixels / max(int(pixels.sum()), 1)).tolist()
    labels = [f"{k} {c}" for k, c in enumerate(report.classes)] + ["255 (ignore)"]
    colours = [*report.palette, (200, 200, 200)]
    chart = bar_chart(labels, shares, colours, f"pixel share per class: {report.root.name} "
                      f"({report.layout})")  # fmt: skip
    written = [out / PICTURES[0]]
    write_png(written[0], chart)
    if report.samples:
        written.append(out / PICTURES[1])
        write_png(written[1], sample_sheet(report.samples, report.classes, report.palette))
    return written


def run(args: argparse.Namespace) -> DataReport:
    progress = None if args.no_progress else (lambda it, desc: tqdm(it, desc=desc, leave=False))
    report = check_dataset(args.root, args.format, dict(args.option), args.samples, progress)
    counts = {name: s.count for name, s in report.splits.items()}
    print(f"{report.root}: {describe(report.layout, counts, len(report.classes))}")
    print("\n".join(_table(report)) if report.classes else "no split could be read")
    print(_sizes(report))
    breaking = report.breaking
    print(f"problems: {len(breaking)} would break training, "
          f"{len(report.problems) - len(breaking)} to look at")  # fmt: skip
    for p in report.problems:
        print(f"  [{'error' if p.breaking else 'note'}] {p.where}: {' '.join(p.message.split())}")
    base = Path("data_check")
    out = Path(args.out) if args.out else base / fresh_name(base, report.root.name, PICTURES)
    if args.out and any((out / name).exists() for name in PICTURES):
        raise FileExistsError(f"{out} already holds a check's pictures; give another --out")
    for path in _pictures(report, out):
        print(f"wrote {path}")
    if breaking:
        first = breaking[0]
        raise ValueError(f"{len(breaking)} problem(s) would break training; first, "
                         f"{first.where}: {first.message}")  # fmt: skip
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)
