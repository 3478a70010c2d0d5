"""Datasets (Cityscapes, COCO, folders, synthetic), transforms and loader helpers."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from .ade20k import ADE20K
from .cityscapes import Cityscapes
from .coco import COCOSegmentation
from .folder import FolderSegmentation
from .loader import pad_collate, worker_init
from .roboflow import RoboflowSegmentation
from .synthetic import SyntheticSegmentation
from .transforms import IGNORE_INDEX, Preset, eval_preset, train_preset
from .voc import VOCSegmentation

DATASETS: dict[str, type] = {
    "ade20k": ADE20K,
    "cityscapes": Cityscapes,
    "coco": COCOSegmentation,
    "folder": FolderSegmentation,
    "roboflow": RoboflowSegmentation,
    "synthetic": SyntheticSegmentation,
    "voc": VOCSegmentation,
}


def build_dataset(
    name: str,
    split: str,
    root: str | Path | None = None,
    transforms: Callable | None = None,
    **options,
):
    """Build ``DATASETS[name]`` for ``split``; ``options`` go to its constructor. Every
    adapter takes ``root``, ``split`` and ``transforms`` by keyword (the synthetic scenes
    ignore ``root``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    cls = DATASETS[name]
    valid = sorted(set(inspect.signature(cls).parameters) - {"root", "split", "transforms"})
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"dataset {name!r}: unknown option {', '.join(unknown)}; valid options: "
                         f"{', '.join(valid)}")  # fmt: skip
    return cls(root=root, split=split, transforms=transforms, **options)


__all__ = [
    "ADE20K",
    "DATASETS",
    "IGNORE_INDEX",
    "COCOSegmentation",
    "Cityscapes",
    "FolderSegmentation",
    "Preset",
    "RoboflowSegmentation",
    "SyntheticSegmentation",
    "VOCSegmentation",
    "build_dataset",
    "eval_preset",
    "pad_collate",
    "train_preset",
    "worker_init",
]
