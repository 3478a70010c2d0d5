"""Scoring a model on a dataset split as ``eval_seg.py`` does: the config it is scored with,
what runs it (the model itself or a runtime backend), and the report."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..checkpoint import LoadedModel, load_source
from ..config import Config, load_config
from ..device import resolve_device
from ..inference import Segmenter
from ..preprocess import Preprocessing
from .builders import eval_dataset
from .evaluation import EvalResult, PredictionWriter, evaluate


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


@dataclass
class EvalSettings:
    """What to score and how: the model (a checkpoint file or a weights name), the config
    (the checkpoint's, a YAML file, dotted overrides and the shorthands below) and the mode.

    The shorthands are config overrides (``data_root=X`` is ``data.root=X``); the evaluation
    uses the config's ``train.val_batch_size``. ``backend``/``precision`` score the model as
    a Segmenter runs it (``onnx``: an exported file of it)."""

    checkpoint: str | Path | None = None
    weights: str | None = None
    config: str | Path | None = None
    overrides: Sequence[str] = ()
    dataset: str | None = None
    data_root: str | None = None
    split: str | None = None
    resize: int | None = None  # 0: native resolution
    slide: Sequence[int] | None = None
    tta: bool = False
    scales: Sequence[float] | None = None
    device: str = "cpu"
    backend: str = "auto"
    precision: str = "fp32"
    onnx: str | Path | None = None
    workers: int | None = None
    save_pred: str | Path | None = None
    cityscapes_results: str | Path | None = None
    progress: bool = True

    def config_overrides(self) -> list[str]:
        flags = {"data.dataset": self.dataset, "data.root": self.data_root,
                 "data.val_split": self.split, "data.num_workers": self.workers}  # fmt: skip
        extra = [f"{k}={v}" for k, v in flags.items() if v is not None]
        if self.resize is not None:  # 0 forces native resolution
            extra.append(f"data.eval_resize={self.resize or 'null'}")
        return [*extra, *self.overrides]


def score(s: EvalSettings) -> tuple[dict, EvalResult, LoadedModel]:
    """Evaluate as ``s`` says: the report (metrics and what ran), the result and the model."""
    _check_modes(s.resize, s.slide, s.scales)
    loaded = load_source(s.checkpoint, s.weights, resolve_device(s.device))
    backend = s.backend
    if (s.slide or s.tta) and backend == "auto" and s.onnx is None:
        backend = "torch"  # the modes that need the full-resolution logits
    scorer, runs = _scorer(loaded, backend, s.precision, s.onnx, s.device)
    if runs != "torch fp32" and (s.slide or s.tta):
        raise ValueError("--slide and --tta run on --backend torch --precision fp32")
    cfg = resolve_config(loaded, s.config, s.config_overrides())
    ds = _dataset(cfg, loaded, str(s.checkpoint or s.weights), s.cityscapes_results)
    scales = list(s.scales or ([0.75, 1.0, 1.25] if s.tta else [1.0]))
    writer = None
    if s.save_pred or s.cityscapes_results:
        writer = PredictionWriter(ds, loaded.palette, s.save_pred, s.cityscapes_results)
    res = evaluate(scorer, ds, len(loaded.classes), device=s.device,
                   batch_size=cfg.train.val_batch_size, num_workers=cfg.data.num_workers,
                   slide=tuple(s.slide) if s.slide else None, scales=scales, flip=s.tta,
                   on_prediction=writer, progress=s.progress)  # fmt: skip
    report = {
        **res.metrics,
        **_run_facts(res, scales if s.tta else None, s.slide, cfg.data.eval_resize),
        "classes": list(loaded.classes),
        "checkpoint": str(s.checkpoint or s.weights),
        "onnx": str(s.onnx) if s.onnx else None,
        "runtime": runs,
        "dataset": cfg.data.dataset,
        "root": cfg.data.root,
        "split": cfg.data.val_split,
        "batch_size": cfg.train.val_batch_size,
        "file_input_resize": _file_input_resize(scorer, ds),
    }
    return report, res, loaded


def _file_input_resize(scorer, ds) -> dict | None:
    """A phone file's fixed input size and the first image's when they differ: each image
    is resized to the file's input (and its labels back), so the model sees another scale."""
    spec = getattr(getattr(scorer, "backend", scorer), "spec", None)
    if spec is None or len(ds) == 0:
        return None
    image = tuple(int(v) for v in np.asarray(ds[0][1]).shape[-2:])
    return None if image == tuple(spec.size) else {"file": list(spec.size), "image": list(image)}


def _dataset(cfg: Config, loaded: LoadedModel, source: str, cityscapes_results):
    """The split to score, checked against the model and the outputs asked for."""
    if cityscapes_results and cfg.data.dataset != "cityscapes":
        raise ValueError("--cityscapes-results needs the cityscapes dataset")
    if cityscapes_results and cfg.data.eval_resize:
        raise ValueError("--cityscapes-results needs native resolution (no --resize)")
    ds = eval_dataset(cfg)
    if getattr(ds, "num_classes", len(loaded.classes)) != len(loaded.classes):
        raise ValueError(
            f"{source} predicts {len(loaded.classes)} classes but dataset "
            f"{cfg.data.dataset!r} has {ds.num_classes}"
        )
    return ds


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


class _Renormalized:
    """A runtime backend whose file takes another normalisation than the dataset's (a phone
    file takes raw 0…255 values): each batch is turned from the dataset's into the file's."""

    def __init__(self, backend, dataset: Preprocessing, wanted: Preprocessing) -> None:
        self.backend = backend
        values = (dataset.mean, dataset.std, wanted.mean, wanted.std)
        d_mean, d_std, w_mean, w_std = (np.float32(v).reshape(1, 3, 1, 1) for v in values)
        self.scale, self.shift = d_std / w_std, (d_mean - w_mean) / w_std

    def lowres_logits(self, batch: np.ndarray):
        return self.backend.lowres_logits(batch * self.scale + self.shift)


def _scorer(loaded: LoadedModel, backend: str, precision: str, onnx, device: str):
    """What scores the images: the torch model itself (fp32, every mode), or a runtime
    backend as Segmenter builds it; and a description of what runs."""
    if onnx is None and backend == "torch" and precision == "fp32":
        return loaded.model, "torch fp32"
    if onnx is not None:
        seg = Segmenter.from_checkpoint(onnx, device, backend, precision)
        if seg.classes != list(loaded.classes):
            raise ValueError(f"{onnx} has other classes than {loaded.classes}")
        if seg.preprocessing != replace(loaded.preprocessing, resize=seg.preprocessing.resize):
            fed = _Renormalized(seg.backend, loaded.preprocessing, seg.preprocessing)
            return fed, f"{seg.backend_name} {seg.precision}"
    else:
        seg = Segmenter.from_model(loaded.model, loaded.classes, loaded.palette, device=device,
                                   backend=backend, precision=precision)  # fmt: skip
    return seg.backend, f"{seg.backend_name} {seg.precision}"
