"""Predict masks for images and videos: files, folders, globs or a camera in; PNGs of class
ids and overlay videos out.

    segmnv3-predict --checkpoint runs/demo/best.pt photos/ --out masks/ --color --overlay
    segmnv3-predict --weights lraspp_mobilenet_v3_large.coco_with_voc_labels_v1 street.jpg --out m/
    segmnv3-predict --checkpoint runs/demo/best.pt "survey/**/*.jpg" --out masks/ --ray local \
        --actors 2 --resume

Output names and the rules that keep inputs and earlier outputs safe are
:mod:`segmnv3.inference.files`'s; ``--camera N`` writes ``<out>/cameraN.mp4``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from ..inference.files import (
    is_uri,
    output_kinds,
    plan_outputs,
    plan_predictions,
    predict_files,
    read_list_files,
    video_summary,
)
from ..inference.ray import list_uris, predict_on_ray
from ..inference.stream import segment_video
from .common import (
    ArgumentParser,
    SomeFailed,
    add_model_source,
    add_runtime_options,
    positive_int,
    run_tool,
    segmenter_from_args,
    show_progress,
)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="predict_seg.py", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="*", help="image or video files, folders, glob patterns, "
                   "list files (.txt, one per line), or with --ray object-store URIs")  # fmt: skip
    p.add_argument("--camera", type=int, metavar="N", help="segment camera N (Ctrl-C stops)")
    p.add_argument("--frames", action="store_true", help="videos: also a mask PNG per frame")
    p.add_argument("--max-frames", type=positive_int, help="videos: stop after N frames")
    add_model_source(p, ".pt checkpoint, torchvision .pth or exported .onnx")
    p.add_argument("--out", required=True, help="output folder")
    add_runtime_options(p)
    p.add_argument("--color", action="store_true", help="also write colour masks")
    p.add_argument("--overlay", action="store_true", help="also write overlays")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip inputs whose outputs are all written (an interrupted run again)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="predict on a Ray cluster (Ray Data): 'local' starts one here, 'auto' joins the "
        "cluster of this machine, or the head's host:port",
    )
    p.add_argument("--actors", type=positive_int, default=1, help="--ray: Segmenter actors")
    p.add_argument("--cpus-per-actor", type=float, default=1.0)
    p.add_argument("--gpus-per-actor", type=float, default=0.0)
    p.add_argument("--no-progress", action="store_true")
    return p


def _uri_plans(args: argparse.Namespace, uris: list[str], kinds, overwrite: bool):
    """Object-store inputs listed here and planned by the local rules (``file://`` ones are
    local files, never overwritten); the cluster reads their bytes."""
    filesystem, paths = list_uris(uris)
    if filesystem.type_name == "local":
        paths = [Path(p) for p in paths]
    outputs = plan_outputs(paths, Path(args.out), kinds, overwrite)
    return list(zip(paths, outputs, strict=True)), filesystem


def _plans(args: argparse.Namespace):
    """The planned outputs (and the object store's filesystem for URI inputs); with
    ``--resume``, less the inputs whose outputs all exist."""
    kinds = output_kinds(args.color, args.overlay, args.frames)
    overwrite = args.overwrite or args.resume
    inputs, filesystem = read_list_files(args.inputs), None
    uris = [item for item in inputs if is_uri(item)] if args.ray is not None else []
    if 0 < len(uris) < len(inputs):  # (without --ray, planning names a URI as the problem)
        local = next(i for i in inputs if not is_uri(i))
        raise ValueError(f"{uris[0]} is a URI and {local} is not: one run reads one "
                         "filesystem")  # fmt: skip
    if uris:
        plans, filesystem = _uri_plans(args, uris, kinds, overwrite)
    else:
        plans = plan_predictions(inputs, args.out, kinds, overwrite)
    if args.resume:
        todo = [(p, plan) for p, plan in plans if not all(t.exists() for t in plan.values())]
        print(f"--resume: {len(plans) - len(todo)} of {len(plans)} inputs already written")
        plans = todo
    return plans, filesystem


def _on_ray(args: argparse.Namespace, plans, filesystem) -> list[Path]:
    source = args.checkpoint or args.weights
    began = time.perf_counter()
    failures = predict_on_ray(plans, source, address=args.ray, actors=args.actors,
                              cpus=args.cpus_per_actor, gpus=args.gpus_per_actor,
                              filesystem=filesystem, progress=not args.no_progress,
                              backend=args.backend, precision=args.precision,
                              num_threads=args.threads)  # fmt: skip
    done = len(plans) - len(failures)
    seconds = time.perf_counter() - began
    print(f"ray: {done} images in {seconds:.1f} s ({done / max(seconds, 1e-9):.1f} images/s), "
          f"{args.actors} actor(s), {len(failures)} failed")  # fmt: skip
    for path, reason in failures:
        print(f"failed: {path}: {reason}")
    if failures:
        raise SomeFailed(f"{len(failures)} of {len(plans)} images failed (listed above)")
    return [plan["mask"] for _, plan in plans]


def run(args: argparse.Namespace) -> list[Path]:
    plans = filesystem = None
    if args.ray is not None and (args.camera is not None or not args.inputs or args.weights):
        raise ValueError("--ray predicts image inputs from a --checkpoint (no --camera)")
    if args.inputs:  # names checked before the model loads: bad input fails in a second
        plans, filesystem = _plans(args)
    if args.ray is not None:
        return _on_ray(args, plans, filesystem)
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
        print(video_summary(segment_video(seg, args.camera, out, frames_dir=frames_dir,
                                     max_frames=args.max_frames, progress=progress)))  # fmt: skip
        written.append(out)
    if args.inputs:
        written += predict_files(seg, args.inputs, args.out, plans=plans, color=args.color,
                                 overlay=args.overlay, overwrite=args.overwrite,
                                 frames=args.frames, max_frames=args.max_frames,
                                 progress=progress)  # fmt: skip
    print(f"wrote {len(written)} outputs to {args.out}")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, run, argv)
