"""Masks for files: inputs expanded, outputs planned and checked before anything is
written, then written (used by ``predict_seg.py`` and anyone predicting a folder).

Output names: each mask is ``<out>/<path>.png``, where ``<path>`` is the input's path
relative to the deepest folder shared by all inputs, without its extension (``photos/a/x.jpg``
and ``photos/b/x.jpg`` give ``a/x.png`` and ``b/x.png``); colour masks and overlays go to
``<out>/color/`` and ``<out>/overlay/`` under the same names. Nothing is written when two
inputs would share an output name, when an output would be an input file, or when an
output exists already (unless ``--overwrite``, which still never touches an input).

Videos (``.mp4 .avi .mov .mkv``) and ``--camera N`` give an overlay video ``<out>/<path>.mp4``
(``.avi`` for an .avi) at the source's frame rate and size (odd sizes padded to even), and
with ``--frames`` a mask PNG per frame in ``<out>/<path>.frames/``.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath

from tqdm import tqdm

from ..io import IMAGE_EXTENSIONS, read_image, write_png
from .segmenter import Segmenter
from .stream import VIDEO_EXTENSIONS, check_video, segment_video

LIST_SUFFIXES = (".txt", ".lst")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(item: str) -> bool:
    """``s3://…``, ``gs://…``, ``file://…``: an input read through Ray Data's readers."""
    return bool(_URI.match(str(item)))


def read_list_files(inputs: Iterable[str]) -> list[str]:
    """Inputs with each list file (``.txt``/``.lst``: one file, folder, glob or URI per line,
    ``#`` comments and blank lines skipped; relative paths from the list's folder) replaced
    by its lines."""
    items: list[str] = []
    for item in inputs:
        p = Path(item)
        if is_uri(item) or p.suffix.lower() not in LIST_SUFFIXES or not p.is_file():
            items.append(str(item))
            continue
        try:
            lines = p.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"list file {p}: cannot read it ({exc})") from None
        named = [x for x in (line.strip() for line in lines) if x and not x.startswith("#")]
        if not named:
            raise ValueError(f"list file {p} names no inputs (one path, folder, glob or URI "
                             "per line)")  # fmt: skip
        items += [x if is_uri(x) or Path(x).is_absolute() else str(p.parent / x) for x in named]
    return items


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files, folders (their images and videos, sorted) and glob patterns → paths."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if is_uri(item):
            raise ValueError(f"{item} is a URI: object-store inputs are read by Ray Data's "
                             "readers, add --ray local|ADDRESS")  # fmt: skip
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in MEDIA_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"no images or videos in folder {p}")
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                raise FileNotFoundError(f"no such file, folder or glob match: {item}")
            paths += matches
    return list(dict.fromkeys(paths))  # a file named twice is predicted once


def output_names(paths: Sequence[PurePath]) -> list[PurePath]:
    """Each input's output name (relative, no suffix): its path under the inputs' deepest
    common folder (local paths resolved first; ``PurePosixPath``s are object-store keys).
    Raises when two inputs would share a name."""
    absolute = [p.resolve() if isinstance(p, Path) else p for p in paths]
    root = common_folder(absolute)
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


def common_folder(paths: Sequence[PurePath]) -> PurePath:
    """The deepest folder holding every path (of one kind: local or object-store)."""
    if not paths:
        return Path()
    return type(paths[0])(os.path.commonpath([str(p.parent) for p in paths]))


def plan_outputs(
    paths: Sequence[PurePath], out_dir: Path, kinds: Sequence[str], overwrite: bool
) -> list[dict[str, Path]]:
    """Per input, the file of each output kind (images: ``mask``, ``color``, ``overlay``;
    videos: ``video``, ``frames``), checked before anything is written: never an input,
    never an existing file unless ``overwrite``."""
    inputs = {p.resolve() for p in paths if isinstance(p, Path)}
    plans = []
    for path, name in zip(paths, output_names(paths), strict=True):
        video = path.suffix.lower() in VIDEO_EXTENSIONS
        wanted = [k for k in kinds if (k in VIDEO_KINDS) == video]
        plan = {kind: _output(out_dir, name, kind, path.suffix.lower()) for kind in wanted}
        for target in plan.values():
            if target.resolve() in inputs:
                raise ValueError(f"{target} is an input file: choose another --out folder")
            if target.exists() and not overwrite:
                raise FileExistsError(
                    f"{target} exists (from an earlier run?): choose another --out folder, "
                    "or pass --overwrite to replace earlier outputs"
                )
        plans.append(plan)
    return plans


VIDEO_KINDS = ("video", "frames")
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS


def _output(out_dir: Path, name: PurePath, kind: str, suffix: str) -> Path:
    if kind == "video":
        return out_dir / name.with_name(name.name + (".avi" if suffix == ".avi" else ".mp4"))
    if kind == "frames":
        return out_dir / name.with_name(name.name + ".frames")
    folder = {"mask": Path(), "color": Path("color"), "overlay": Path("overlay")}[kind]
    return out_dir / folder / name.with_name(name.name + ".png")


def plan_predictions(
    inputs: Iterable[str], out_dir: str | Path, kinds: Sequence[str], overwrite: bool = False
) -> list[tuple[Path, dict[str, Path]]]:
    """The inputs expanded, each with its planned outputs (see :func:`plan_outputs`)."""
    paths = expand_inputs(read_list_files(inputs))
    plans = list(zip(paths, plan_outputs(paths, Path(out_dir), kinds, overwrite), strict=True))
    for path, plan in plans:  # every video readable before any output is written
        if "video" in plan:
            check_video(path)
    return plans


def predict_files(
    segmenter: Segmenter,
    inputs: Iterable[str],
    out_dir: str | Path,
    *,
    plans: list[tuple[Path, dict[str, Path]]] | None = None,
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
    docstring says (``plans``: from :func:`plan_predictions`, when planned already).
    Returns the mask and video paths."""
    if plans is None:
        plans = plan_predictions(inputs, out_dir, output_kinds(color, overlay, frames), overwrite)
    images = [(p, plan) for p, plan in plans if "mask" in plan]
    for path, plan in plans:
        if "video" in plan:
            report = segment_video(segmenter, path, plan["video"], frames_dir=plan.get("frames"),
                                   max_frames=max_frames, progress=progress)  # fmt: skip
            log(video_summary(report))
    for path, plan in tqdm(images, desc="predict", disable=not progress or not images):
        rgb = read_image(path)  # decoded once for the mask and the overlay
        mask = segmenter.predict(rgb)
        write_png(plan["mask"], mask)
        if "color" in plan:
            write_png(plan["color"], segmenter.colorize(mask))
        if "overlay" in plan:
            write_png(plan["overlay"], segmenter.overlay(rgb, mask))
    return [plan.get("mask", plan.get("video")) for _, plan in plans]


def output_kinds(color: bool, overlay: bool, frames: bool) -> list[str]:
    return ["mask", "video"] + ["color"] * color + ["overlay"] * overlay + ["frames"] * frames


def video_summary(report: dict) -> str:
    return (f"{report['source']}: {report['frames']} frames in {report['seconds']:.1f} s, "
            f"{report['fps']:.1f} frames/s ({report['runtime']}); wrote "
            f"{report['video']}")  # fmt: skip
