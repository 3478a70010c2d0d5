"""Predict masks for images and videos: files, folders, globs or a camera in; PNGs of class
ids and overlay videos out.

    segmnv3-predict --checkpoint runs/demo/best.pt photos/ --out masks/ --color --overlay
    segmnv3-predict --weights lraspp_mobilenet_v3_large.coco_with_voc_labels_v1 street.jpg --out m/

Output names: each mask is ``<out>/<path>.png``, where ``<path>`` is the input's path
relative to the deepest folder shared by all inputs, without its extension (``photos/a/x.jpg``
and ``photos/b/x.jpg`` give ``a/x.png`` and ``b/x.png``); colour masks and overlays go to
``<out>/color/`` and ``<out>/overlay/`` under the same names. Nothing is written when two
inputs would share an output name, when an output would be an input file, or when an
output exists already (unless ``--overwrite``, which still never touches an input).

Videos (``.mp4 .avi .mov .mkv``) and ``--camera N`` give an overlay video ``<out>/<path>.mp4``
(``.avi`` for an .avi) at the source's frame rate and size, and with ``--frames`` a mask PNG
per frame in ``<out>/<path>.frames/``.
"""

from __future__ import annotations

import argparse
import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm import tqdm

from ..inference import Segmenter
from ..inference.stream import VIDEO_EXTENSIONS, segment_video
from ..io import IMAGE_EXTENSIONS, write_png
from .common import (
    ArgumentParser,
    add_model_source,
    add_runtime_options,
    positive_int,
    run_tool,
    segmenter_from_args,
    show_progress,
)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="predict_seg.py", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="*", help="image or video files, folders or glob patterns")
    p.add_argument("--camera", type=int, metavar="N", help="segment camera N (Ctrl-C stops)")
    p.add_argument("--frames", action="store_true", help="videos: also a mask PNG per frame")
    p.add_argument("--max-frames", type=positive_int, help="videos: stop after N frames")
    add_model_source(p, ".pt checkpoint, torchvision .pth or exported .onnx")
    p.add_argument("--out", required=True, help="output folder")
    add_runtime_options(p)
    p.add_argument("--color", action="store_true", help="also write colour masks")
    p.add_argument("--overlay", action="store_true", help="also write overlays")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true")
    return p


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files, folders (their images and videos, sorted) and glob patterns → paths."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in MEDIA_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"no images or videos in folder {p}")
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
    """Each input's output name (relative, no suffix): its path under the inputs' deepest
    common folder. Raises when two inputs would share a name."""
    absolute = [p.resolve() for p in paths]
    root = Path(os.path.commonpath([p.parent for p in absolute])) if absolute else Path()
    names = [p.relative_to(root).with_suffix("") for p in absolute]
    seen: dict[Path, Path] = {}
    for path, name in zip(paths, names, strict=True):
        if name in seen:
            raise ValueError(
                f"{seen[name]} and {path} would both be written as {name}.*: rename one of them "
                "or predict them in separate runs"
            )
        seen[name] = path
    return names


def plan_outputs(
    paths: Sequence[Path], out_dir: Path, kinds: Sequence[str], overwrite: bool
) -> list[dict[str, Path]]:
    """Per input, the file of each output kind (images: ``mask``, ``color``, ``overlay``;
    videos: ``video``, ``frames``), checked before anything is written: never an input,
    never an existing file unless ``overwrite``."""
    inputs = {p.resolve() for p in paths}
    plans = []
    for path, name in zip(paths, output_names(paths), strict=True):
        video = path.suffix.lower() in VIDEO_EXTENSIONS
        wanted = [k for k in kinds if (k in VIDEO_KINDS) == video]
        plan = {kind: _output(out_dir, name, kind, path.suffix.lower()) for kind in wanted}
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


VIDEO_KINDS = ("video", "frames")
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS


def _output(out_dir: Path, name: Path, kind: str, suffix: str) -> Path:
    if kind == "video":
        return out_dir / name.with_name(name.name + (".avi" if suffix == ".avi" else ".mp4"))
    if kind == "frames":
        return out_dir / name.with_name(name.name + ".frames")
    folder = {"mask": Path(), "color": Path("color"), "overlay": Path("overlay")}[kind]
    return out_dir / folder / name.with_name(name.name + ".png")


def predict_files(
    segmenter: Segmenter,
    inputs: Iterable[str],
    out_dir: str | Path,
    *,
    color: bool = False,
    overlay: bool = False,
    overwrite: bool = False,
    frames: bool = False,
    max_frames: int | None = None,
    progress: bool = True,
    log=print,
) -> list[Path]:
    """Write a mask of class ids per image (and colour masks and overlays on request) and
    an overlay video per video (and mask PNGs per frame on request), named as the module's
    docstring says. Returns the mask and video paths."""
    paths = expand_inputs(inputs)
    plans = plan_outputs(paths, Path(out_dir), output_kinds(color, overlay, frames), overwrite)
    images = [(p, plan) for p, plan in zip(paths, plans, strict=True) if "mask" in plan]
    for path, plan in zip(paths, plans, strict=True):
        if "video" in plan:
            report = segment_video(segmenter, path, plan["video"], frames_dir=plan.get("frames"),
                                   max_frames=max_frames, progress=progress)  # fmt: skip
            log(_summary(report))
    for path, plan in tqdm(images, desc="predict", disable=not progress or not images):
        mask = segmenter.predict(path)
        write_png(plan["mask"], mask)
        if color:
            write_png(plan["color"], segmenter.colorize(mask))
        if overlay:
            write_png(plan["overlay"], segmenter.overlay(path, mask))
    return [plan.get("mask", plan.get("video")) for plan in plans]


def output_kinds(color: bool, overlay: bool, frames: bool) -> list[str]:
    return ["mask", "video"] + ["color"] * color + ["overlay"] * overlay + ["frames"] * frames


def _summary(report: dict) -> str:
    return (f"{report['source']}: {report['frames']} frames in {report['seconds']:.1f} s, "
            f"{report['fps']:.1f} frames/s ({report['runtime']}); wrote "
            f"{report['video']}")  # fmt: skip


def run(args: argparse.Namespace) -> list[Path]:
    if args.inputs:  # names checked before the model loads: bad input fails in a second
        kinds = output_kinds(args.color, args.overlay, args.frames)
        plan_outputs(expand_inputs(args.inputs), Path(args.out), kinds, args.overwrite)
    seg = segmenter_from_args(args)
    print(f"running {seg.describe()}")
    progress = show_progress(args.no_progress)
    if not args.inputs and args.camera is None:
        raise ValueError("give image or video inputs, or --camera N")
    written = []
    if args.camera is not None:
        out = Path(args.out) / f"camera{args.camera}.mp4"
        if out.exists() and not args.overwrite:
            raise FileExistsError(f"{out} exists: choose another --out folder, or --overwrite")
        frames_dir = out.with_suffix(".frames") if args.frames else None
        print(_summary(segment_video(seg, args.camera, out, frames_dir=frames_dir,
                                     max_frames=args.max_frames, progress=progress)))  # fmt: skip
        written.append(out)
    if args.inputs:
        written += predict_files(seg, args.inputs, args.out, color=args.color,
                                 overlay=args.overlay, overwrite=args.overwrite,
                                 frames=args.frames, max_frames=args.max_frames,
                                 progress=progress)  # fmt: skip
    print(f"wrote {len(written)} outputs to {args.out}")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)
