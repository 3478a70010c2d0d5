"""Prediction over a Ray cluster through Ray Data: a pool of Segmenter actors
(``ActorPoolStrategy``), each loading the model once, mapped over batches of images.

``segment_dataset(ds, source)`` takes a Ray Dataset with an ``image`` column (H×W×3 uint8
arrays) and returns one with a ``labels`` column, for users' own pipelines.
``predict_on_ray(...)`` is ``predict_seg.py --ray``: the same files, names and rules as the
one-process tool (planned by :mod:`segmnv3.inference.files`), each output written atomically
by the actor that made it; an unreadable image is reported by name, not fatal.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io import read_image, write_png


def _require():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ValueError("Ray is not installed: pip install 'segmnv3[ray]'") from None
    return ray


class _Predictor:
    """An actor: the Segmenter built once, then batches of images → labels."""

    def __init__(self, source: str, options: dict) -> None:
        from .segmenter import Segmenter

        self.segmenter = Segmenter.from_checkpoint(source, **options)

    def __call__(self, batch: dict) -> dict:
        batch["labels"] = np.stack([self.segmenter.predict(x) for x in batch["image"]])
        return batch


class _Writer(_Predictor):
    """An actor that reads, predicts and writes each planned output (a failure is a row)."""

    def __call__(self, batch: dict) -> dict:
        errors = []
        for i, path in enumerate(batch["path"]):
            try:
                rgb = read_image(path)
                mask = self.segmenter.predict(rgb)
                write_png(batch["mask"][i], mask)
                if batch["color"][i]:
                    write_png(batch["color"][i], self.segmenter.colorize(mask))
                if batch["overlay"][i]:
                    write_png(batch["overlay"][i], self.segmenter.overlay(rgb, mask))
                errors.append("")
            except (OSError, ValueError) as exc:
                errors.append(" ".join(str(exc).split()) or type(exc).__name__)
        return {"path": batch["path"], "error": np.array(errors, dtype=object)}


def _compute(actors: int):
    from ray.data import ActorPoolStrategy

    return ActorPoolStrategy(size=actors)


def segment_dataset(ds, source: str | Path, *, actors: int = 1, cpus: float = 1,
                    gpus: float = 0, batch_size: int = 4, **options):  # fmt: skip
    """``ds`` (an ``image`` column of H×W×3 uint8 arrays of one size per batch) with a
    ``labels`` column (H×W uint8), by ``actors`` Segmenter actors of ``cpus``/``gpus``
    each; ``options`` go to ``Segmenter.from_checkpoint``."""
    _require()
    return ds.map_batches(_Predictor, fn_constructor_args=(str(source), options),
                          compute=_compute(actors), num_cpus=cpus, num_gpus=gpus,
                          batch_size=batch_size, batch_format="numpy")  # fmt: skip


def start(address: str, cpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start one on this machine for ``local``."""
    ray = _require()
    if ray.is_initialized():
        return
    if address == "local":
        ray.init(num_cpus=cpus or os.cpu_count(), include_dashboard=False,
                 log_to_driver=False)  # fmt: skip
    else:
        ray.init(address=address, log_to_driver=False)


def predict_on_ray(plans, source: str | Path, *, address: str = "local", actors: int = 1,
                   cpus: float = 1, gpus: float = 0, batch_size: int = 4,
                   **options) -> list[tuple[str, str]]:  # fmt: skip
    """Write the planned outputs of every image on a Ray cluster; returns the failures as
    ``(path, reason)``. Videos are refused (one video is one process's stream)."""
    ray = _require()
    videos = [p for p, plan in plans if "video" in plan]
    if videos:
        raise ValueError(f"--ray predicts images; {videos[0]} is a video (run it without --ray)")
    start(address, None)
    rows = [{"path": str(p), "mask": str(plan["mask"]), "color": str(plan.get("color", "")),
             "overlay": str(plan.get("overlay", ""))} for p, plan in plans]  # fmt: skip
    ds = ray.data.from_items(rows).map_batches(
        _Writer, fn_constructor_args=(str(source), options), compute=_compute(actors),
        num_cpus=cpus, num_gpus=gpus, batch_size=batch_size, batch_format="numpy")  # fmt: skip
    return [(r["path"], r["error"]) for r in ds.take_all() if r["error"]]
