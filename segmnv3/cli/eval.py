"""Evaluate a segmentation checkpoint: per-class IoU, mIoU and pixel accuracy.

segmnv3-eval --checkpoint runs/demo/best.pt --json metrics.json
segmnv3-eval --checkpoint cs.pt --config configs/lraspp_cityscapes.yaml data.root=DATA/cs
torchrun --nproc_per_node=2 tools/eval_seg.py --checkpoint runs/demo/best.pt
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from ..checkpoint import LoadedModel, load_source
from ..config import Config, load_config
from ..device import default_device, resolve_device
from ..engine import distributed as du
from ..engine.builders import eval_dataset
from ..engine.evaluate import PredictionWriter, evaluate, format_table
from ..inference import BACKENDS, PRECISIONS, Segmenter
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
    p.add_argument("--onnx", help="score this exported model (fp32 or int8 .onnx) instead; "
                   "--checkpoint still gives the config")  # fmt: skip
    p.add_argument("--workers", type=int, help="overrides data.num_workers")
    p.add_argument("--json", dest="json_path", help="write the metrics to this JSON file")
    p.add_argument("--save-pred", help="write raw masks, colour masks and overlays here")
    p.add_argument("--cityscapes-results", help="write label-id PNGs for the official evaluator")
    p.add_argument("--plot-confusion", help="draw the normalised confusion matrix to this PNG")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs="*", help="dotted key=value, e.g. data.num_workers=0")
    return p


def resolve_config(
    loaded: LoadedModel, config: str | Path | None, overrides: Sequence[str]
) -> Config:
    """The checkpoint's config ← ``config`` (a YAML file) ← dotted ``overrides``.

    Dataset options belong to the dataset they were written for: when the result names
    another dataset than the checkpoint's, the checkpoint's options are dropped."""
    base = loaded.config.to_dict()
    resolved = load_config(config, list(overrides), base=base)
    if resolved.data.dataset != loaded.config.data.dataset:
        base["data"]["options"], base["data"]["val_options"] = {}, {}
        resolved = load_config(config, list(overrides), base=base)
    return resolved


def mode_of(resize: int | None, slide: Sequence[int] | None, tta: bool) -> str:
    """``whole``, ``resize`` or ``slide``, with ``+tta`` when flips and scales are averaged."""
    base = "slide" if slide else "resize" if resize else "whole"
    return base + ("+tta" if tta else "")


def run(
    checkpoint: str | Path | None = None,
    *,
    weights: str | None = None,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    dataset: str | None = None,
    data_root: str | None = None,
    split: str | None = None,
    resize: int | None = None,
    slide: Sequence[int] | None = None,
    tta: bool = False,
    scales: Sequence[float] | None = None,
    device: str = "cpu",
    backend: str = "auto",
    precision: str = "fp32",
    onnx: str | Path | None = None,
    workers: int | None = None,
    json_path: str | Path | None = None,
    save_pred: str | Path | None = None,
    cityscapes_results: str | Path | None = None,
    plot_confusion: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Evaluate ``checkpoint``; print the table (main process) and return the report.

    The flags are shorthands for config overrides (``--data-root X`` is ``data.root=X``);
    the evaluation uses the config's ``train.val_batch_size``. ``backend``/``precision``
    score the model as a Segmenter runs it (``onnx``: an exported file of it)."""
    flags = {"data.dataset": dataset, "data.root": data_root, "data.val_split": split,
             "data.num_workers": workers}  # fmt: skip
    extra = [f"{k}={v}" for k, v in flags.items() if v is not None]
    if resize is not None:  # 0 forces native resolution
        extra.append(f"data.eval_resize={resize or 'null'}")
    _check_modes(resize, slide, scales)
    loaded = load_source(checkpoint, weights, resolve_device(device))
    source = str(checkpoint or weights)
    if (slide or tta) and backend == "auto" and onnx is None:
        backend = "torch"  # the modes that need the full-resolution logits
    scorer, runs = _scorer(loaded, backend, precision, onnx, device)
    if runs != "torch fp32" and (slide or tta):
        raise ValueError("--slide and --tta run on --backend torch --precision fp32")
    cfg = resolve_config(loaded, config, [*extra, *overrides])
    eval_resize = cfg.data.eval_resize
    if cityscapes_results and cfg.data.dataset != "cityscapes":
        raise ValueError("--cityscapes-results needs the cityscapes dataset")
    if cityscapes_results and eval_resize:
        raise ValueError("--cityscapes-results needs native resolution (no --resize)")
    ds = eval_dataset(cfg)
    if getattr(ds, "num_classes", len(loaded.classes)) != len(loaded.classes):
        raise ValueError(
            f"{source} predicts {len(loaded.classes)} classes but dataset "
            f"{cfg.data.dataset!r} has {ds.num_classes}"
        )
    scales = list(scales or ([0.75, 1.0, 1.25] if tta else [1.0]))
    writer = None
    if save_pred or cityscapes_results:
        writer = PredictionWriter(ds, loaded.palette, save_pred, cityscapes_results)
    res = evaluate(scorer, ds, len(loaded.classes), device=device,
                   batch_size=cfg.train.val_batch_size, num_workers=cfg.data.num_workers,
                   slide=tuple(slide) if slide else None, scales=scales, flip=tta,
                   on_prediction=writer, progress=progress)  # fmt: skip
    report = {
        **res.metrics,
        **_run_facts(res, scales if tta else None, slide, eval_resize),
        "classes": list(loaded.classes),
        "checkpoint": source,
        "onnx": str(onnx) if onnx else None,
        "runtime": runs,
        "dataset": cfg.data.dataset,
        "root": cfg.data.root,
        "split": cfg.data.val_split,
        "batch_size": cfg.train.val_batch_size,
    }
    if du.is_main():
        _write_outputs(report, res, loaded.classes, json_path, plot_confusion)
    return report


def _check_modes(resize, slide, scales) -> None:
    if scales is not None and min(scales, default=1) <= 0:
        raise ValueError(f"--scales {' '.join(map(str, scales))}: every scale must be > 0")
    if slide is not None and not 1 <= slide[1] <= slide[0]:
        raise ValueError(f"--slide {slide[0]} {slide[1]}: needs 1 <= STRIDE <= CROP")
    if resize is not None and resize < 0:
        raise ValueError(f"--resize {resize}: must be > 0 (or 0 for native resolution)")


def _run_facts(res, tta_scales, slide, eval_resize) -> dict:
    """What ran and how long it took, for the report."""
    return {
        "mode": mode_of(eval_resize, slide, tta_scales is not None),
        "resize": eval_resize,
        "slide": list(slide) if slide else None,
        "tta": {"scales": tta_scales, "flip": True} if tta_scales is not None else None,
        "images": res.images,
        "seconds": round(res.seconds, 3),
        "metric_seconds": round(res.metric_seconds, 4),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _scorer(loaded: LoadedModel, backend: str, precision: str, onnx, device: str):
    """What scores the images: the torch model itself (fp32, every mode), or a runtime
    backend as Segmenter builds it; and a description of what runs."""
    if onnx is None and backend == "torch" and precision == "fp32":
        return loaded.model, "torch fp32"
    if onnx is not None:
        seg = Segmenter.from_checkpoint(onnx, device, backend, precision)
        if seg.classes != list(loaded.classes):
            raise ValueError(f"{onnx} has other classes than {loaded.classes}")
    else:
        seg = Segmenter.from_model(loaded.model, loaded.classes, loaded.palette, device=device,
                                   backend=backend, precision=precision)  # fmt: skip
    return seg.backend, f"{seg.backend_name} {seg.precision}"


def _write_outputs(report: dict, res, classes, json_path, plot_confusion) -> None:
    print(format_table(res.metrics, classes))
    share = 100 * res.metric_seconds / max(res.seconds, 1e-9)
    print(
        f"{res.images} images ({report['split']}, mode {report['mode']}, {report['runtime']}) "
        f"in {res.seconds:.1f} s; "
        f"metric updates took {res.metric_seconds:.3f} s ({share:.2f}% of the evaluation)"
    )
    if json_path:
        write_bytes_atomic(
            json_path, json.dumps(json_ready(report), indent=2, allow_nan=False).encode()
        )
        print(f"metrics written to {json_path}")
    if plot_confusion:
        write_png(plot_confusion, confusion_image(res.matrix, classes))
        print(f"confusion matrix drawn to {plot_confusion}")


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
