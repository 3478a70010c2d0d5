"""``tools/eval_seg.py`` as a library function: evaluate a checkpoint and write the outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..data.io import write_bytes_atomic, write_png
from ..viz import confusion_image
from . import distributed as du
from .builders import eval_dataset
from .checkpoint import load_model
from .evaluate import PredictionWriter, evaluate, format_table


def run_eval(
    checkpoint: str | Path,
    *,
    config_path: str | Path | None = None,
    overrides: list[str] | None = None,
    dataset: str | None = None,
    data_root: str | None = None,
    split: str | None = None,
    resize: int | None = None,
    slide: tuple[int, int] | None = None,
    tta: bool = False,
    scales: list[float] | None = None,
    device: str = "cpu",
    num_workers: int | None = None,
    json_path: str | Path | None = None,
    save_pred: str | Path | None = None,
    cityscapes_results: str | Path | None = None,
    plot_confusion: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Evaluate ``checkpoint`` and return the report (metrics, names, timing).

    The dataset comes from the checkpoint's config unless ``config_path`` / ``overrides`` /
    ``dataset`` / ``data_root`` / ``split`` say otherwise. Prints on the main process only.
    """
    from ..config import load_config

    loaded = load_model(checkpoint, device)
    config = loaded.config
    if config_path is not None or overrides:
        base = config.to_dict()
        config = load_config(config_path, overrides, base=base)
    if dataset is not None:
        if dataset != config.data.dataset:
            config.data.options, config.data.val_options = {}, {}
        config.data.dataset = dataset
    if data_root is not None:
        config.data.root = data_root
    if num_workers is not None:
        config.data.num_workers = num_workers
    if cityscapes_results and (config.data.dataset != "cityscapes"):
        raise ValueError("--cityscapes-results needs the cityscapes dataset")
    # One effective value: --resize N wins, 0 forces native, None keeps the config's.
    resize = (config.data.eval_resize if resize is None else resize) or None
    if cityscapes_results and resize:
        raise ValueError("--cityscapes-results needs native resolution (no --resize)")
    ds = eval_dataset(config, split, resize or 0)
    if getattr(ds, "num_classes", len(loaded.classes)) != len(loaded.classes):
        raise ValueError(
            f"the checkpoint predicts {len(loaded.classes)} classes but dataset "
            f"{config.data.dataset!r} has {ds.num_classes}"
        )
    scales = scales or ([0.75, 1.0, 1.25] if tta else [1.0])
    writer = None
    if save_pred or cityscapes_results:
        writer = PredictionWriter(ds, loaded.palette, save_pred, cityscapes_results)
    res = evaluate(
        loaded.model,
        ds,
        len(loaded.classes),
        device=device,
        num_workers=config.data.num_workers,
        slide=slide,
        scales=scales,
        flip=tta,
        on_prediction=writer,
        progress=progress,
    )
    mode = "slide" if slide else "resize" if resize else "whole"
    report = {
        **res.metrics,
        "classes": list(loaded.classes),
        "checkpoint": str(checkpoint),
        "dataset": config.data.dataset,
        "root": config.data.root,
        "split": split or config.data.val_split,
        "mode": mode,
        "resize": resize,
        "slide": list(slide) if slide else None,
        "tta": {"scales": list(scales), "flip": True} if tta else None,
        "images": res.images,
        "seconds": round(res.seconds, 3),
        "metric_seconds": round(res.metric_seconds, 4),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if du.is_main():
        print(format_table(res.metrics, loaded.classes))
        share = 100 * res.metric_seconds / max(res.seconds, 1e-9)
        print(
            f"{res.images} images in {res.seconds:.1f} s; metric updates took "
            f"{res.metric_seconds:.3f} s ({share:.2f}% of the evaluation)"
        )
        if json_path:
            write_bytes_atomic(json_path, json.dumps(report, indent=2).encode())
            print(f"metrics written to {json_path}")
        if plot_confusion:
            write_png(plot_confusion, confusion_image(res.matrix, loaded.classes))
            print(f"confusion matrix drawn to {plot_confusion}")
    return report
