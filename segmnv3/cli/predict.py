"""Predict masks for images: files, folders or globs in, PNGs of class ids out.

    segmnv3-predict --checkpoint runs/demo/best.pt photos/ --out masks/ --color --overlay

Output names: each mask is ``<out>/<path>.png``, where ``<path>`` is the input's path
relative to the deepest folder shared by all inputs, without its extension (``photos/a/x.jpg``
and ``photos/b/x.jpg`` give ``a/x.png`` and ``b/x.png``); colour masks and overlays go to
``<out>/color/`` and ``<out>/overlay/`` under the same names. Nothing is written when two
inputs would share an output name, when an output would be an input file, or when an
output exists already (unless ``--overwrite``, which still never touches an input).
"""

from __future__ import annotations

import argparse
import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm import tqdm

from ..data.io import IMAGE_EXTENSIONS, write_png
from ..device import default_device
from ..inference import BACKENDS, PRECISIONS, Segmenter
from .common import ArgumentParser, positive_int, run_tool, show_progress


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="predict_seg.py", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--checkpoint", required=True, help=".pt checkpoint or exported .onnx")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--backend", default="auto",
                   help=f"auto (the fastest installed), {', '.join(BACKENDS)}")  # fmt: skip
    p.add_argument("--precision", default="auto", help=", ".join(PRECISIONS))
    p.add_argument("--threads", type=positive_int, help="runtime threads (default: all cores)")
    p.add_argument("--device", default=default_device())
    p.add_argument("--color", action="store_true", help="also write colour masks")
    p.add_argument("--overlay", action="store_true", help="also write overlays")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true")
    return p


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns → image paths."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"no images in folder {p}")
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item) if Path(m).is_file())
            if not matches:
                raise FileNotFoundError(f"no such file, folder or glob match: {item}")
            paths += matches
    return list(dict.fromkeys(paths))  # a file named twice is predicted once


def output_names(paths: Sequence[Path]) -> list[Path]:
    """Each input's output name (relative, ``.png``): its path under the inputs' deepest
    common folder. Raises when two inputs would share a name."""
    absolute = [p.resolve() for p in paths]
    root = Path(os.path.commonpath([p.parent for p in absolute])) if absolute else Path()
    names = [p.relative_to(root).with_suffix(".png") for p in absolute]
    seen: dict[Path, Path] = {}
    for path, name in zip(paths, names, strict=True):
        if name in seen:
            raise ValueError(
                f"{seen[name]} and {path} would both be written as {name}: rename one of them "
                "or predict them in separate runs"
            )
        seen[name] = path
    return names


def plan_outputs(
    paths: Sequence[Path], out_dir: Path, kinds: Sequence[str], overwrite: bool
) -> list[dict[str, Path]]:
    """Per input, the file of each output kind (``mask``, ``color``, ``overlay``), checked
    before anything is written: never an input, never an existing file unless
    ``overwrite``."""
    inputs = {p.resolve() for p in paths}
    subfolder = {"mask": Path(), "color": Path("color"), "overlay": Path("overlay")}
    plans = []
    for name in output_names(paths):
        plan = {kind: out_dir / subfolder[kind] / name for kind in kinds}
        for target in plan.values():
            if target.resolve() in inputs:
                raise ValueError(f"{target} is an input image: choose another --out folder")
            if target.exists() and not overwrite:
                raise FileExistsError(
                    f"{target} exists (from an earlier run?): choose another --out folder, "
                    "or pass --overwrite to replace earlier outputs"
                )
        plans.append(plan)
    return plans


def predict_files(
    segmenter: Segmenter,
    inputs: Iterable[str],
    out_dir: str | Path,
    *,
    color: bool = False,
    overlay: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Write a mask of class ids per image (and colour masks and overlays on request),
    named as the module's docstring says. Returns the mask paths."""
    paths = expand_inputs(inputs)
    kinds = ["mask"] + ["color"] * color + ["overlay"] * overlay
    plans = plan_outputs(paths, Path(out_dir), kinds, overwrite)
    for path, plan in tqdm(list(zip(paths, plans, strict=True)), desc="predict",
                           disable=not progress):  # fmt: skip
        mask = segmenter.predict(path)
        write_png(plan["mask"], mask)
        if color:
            write_png(plan["color"], segmenter.colorize(mask))
        if overlay:
            write_png(plan["overlay"], segmenter.overlay(path, mask))
    return [plan["mask"] for plan in plans]


def run(args: argparse.Namespace) -> list[Path]:
    seg = Segmenter.from_checkpoint(args.checkpoint, args.device, args.backend, args.precision,
                                    num_threads=args.threads)  # fmt: skip
    print(f"running {seg.describe()}")
    written = predict_files(seg, args.inputs, args.out, color=args.color, overlay=args.overlay,
                            overwrite=args.overwrite,
                            progress=show_progress(args.no_progress))  # fmt: skip
    print(f"wrote {len(written)} masks to {args.out}")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)
