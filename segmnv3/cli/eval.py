"""Evaluate a segmentation checkpoint: per-class IoU, mIoU and pixel accuracy.

segmnv3-eval --checkpoint runs/demo/best.pt --json metrics.json
segmnv3-eval --checkpoint cs.pt --config configs/lraspp_cityscapes.yaml data.root=DATA/cs
torchrun --nproc_per_node=2 tools/eval_seg.py --checkpoint runs/demo/best.pt
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..device import default_device
from ..engine import distributed as du
from ..engine.evaluation import format_table
from ..engine.scoring import EvalSettings, score
from ..inference import BACKENDS, PRECISIONS
from ..io import write_bytes_atomic, write_png
from ..metrics import json_ready
from ..viz import confusion_image
from .common import ArgumentParser, add_model_source, run_tool, show_progress


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="eval_seg.py", description=__doc__.splitlines()[0])
    add_model_source(p, "segmnv3 checkpoint or torchvision .pth")
    p.add_argument("--config", help="YAML config to use instead of the checkpoint's")
    p.add_argument("--dataset", help="overrides data.dataset (cityscapes, coco, folder, ...)")
    p.add_argument("--data-root", help="overrides data.root")
    p.add_argument("--split", help="overrides data.val_split (the split evaluated)")
    p.add_argument("--resize", type=int, help="overrides data.eval_resize (0: native size)")
    p.add_argument("--slide", type=int, nargs=2, metavar=("CROP", "STRIDE"), help="sliding window")
    p.add_argument("--tta", action="store_true", help="average flips and scales")
    p.add_argument("--scales", type=float, nargs="+", help="TTA scales (default 0.75 1 1.25)")
    p.add_argument("--device", default=default_device())
    p.add_argument("--backend", default="auto", help="auto (default; torch for --slide and "
                   f"--tta), {', '.join(BACKENDS)}")  # fmt: skip
    p.add_argument("--precision", default="fp32",
                   help=f"{', '.join(PRECISIONS)} (default fp32)")  # fmt: skip
    p.add_argument("--onnx", help="score this exported model (fp32 or int8 .onnx, or a phone's "
                   ".pte/.tflite) instead; --checkpoint still gives the config")  # fmt: skip
    p.add_argument("--workers", type=int, help="overrides data.num_workers")
    p.add_argument("--json", dest="json_path", help="write the metrics to this JSON file")
    p.add_argument("--save-pred", help="write raw masks, colour masks and overlays here")
    p.add_argument("--cityscapes-results", help="write label-id PNGs for the official evaluator")
    p.add_argument("--plot-confusion", help="draw the normalised confusion matrix to this PNG")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs="*", help="dotted key=value, e.g. data.num_workers=0")
    return p


def _write_outputs(report: dict, res, classes, json_path, plot_confusion) -> None:
    print(format_table(res.metrics, classes))
    share = 100 * res.metric_seconds / max(res.seconds, 1e-9)
    print(
        f"{res.images} images ({report['split']}, mode {report['mode']}, {report['runtime']}) "
        f"in {res.seconds:.1f} s; "
        f"metric updates took {res.metric_seconds:.3f} s ({share:.2f}% of the evaluation)"
    )
    if resize := report.get("file_input_resize"):
        (fh, fw), (ih, iw) = resize["file"], resize["image"]
        print(f"note: {report['onnx']} takes {fh}x{fw} images; each image ({ih}x{iw} for the "
              f"first) is resized to it and its labels back, so the model sees another scale "
              f"than the images' (export with --size {ih}x{iw} to score it at theirs)")  # fmt: skip
    if json_path:
        write_bytes_atomic(
            json_path, json.dumps(json_ready(report), indent=2, allow_nan=False).encode()
        )
        print(f"metrics written to {json_path}")
    if plot_confusion:
        write_png(plot_confusion, confusion_image(res.matrix, classes))
        print(f"confusion matrix drawn to {plot_confusion}")


def run(
    checkpoint: str | Path | None = None,
    *,
    json_path: str | Path | None = None,
    plot_confusion: str | Path | None = None,
    **settings,
) -> dict:
    """Evaluate ``checkpoint`` (see :class:`~segmnv3.engine.scoring.EvalSettings` for the
    rest); print the table (main process), write the outputs asked for, return the report."""
    report, res, loaded = score(EvalSettings(checkpoint, **settings))
    if du.is_main():
        _write_outputs(report, res, loaded.classes, json_path, plot_confusion)
    return report


def _run_args(args: argparse.Namespace) -> dict:
    du.init_distributed(args.device)
    options = vars(args).copy()
    options["progress"] = show_progress(options.pop("no_progress"))
    try:
        return run(**options)
    finally:
        du.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser, _run_args, argv)
