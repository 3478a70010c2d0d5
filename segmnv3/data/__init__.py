"""Datasets (the benchmarks' layouts, the annotation tools' exports, folders, synthetic
scenes, and ``auto``, which detects the layout), transforms and loader helpers."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path

from .ade20k import ADE20K
from .camvid import CamVid
from .cityscapes import Cityscapes
from .coco import COCOSegmentation
from .detect import dataset_splits, describe, detect_layout
from .folder import FolderSegmentation
from .labelme import LabelmeSegmentation
from .loader import pad_collate, worker_init
from .roboflow import RoboflowSegmentation
from .synthetic import SyntheticSegmentation
from .transforms import IGNORE_INDEX, Preset, eval_preset, train_preset
from .ultralytics import UltralyticsSegmentation
from .voc import VOCSegmentation

log = logging.getLogger(__name__)


def auto(root: str | Path | None, split: str = "train", transforms: Callable | None = None,
         **options):  # fmt: skip
    """The dataset at ``root`` in whichever layout it is (``detect_layout``); one log line
    says what was found, with every split's image count."""
    if root is None:
        raise ValueError("dataset 'auto' needs a root folder (data.root / --data-root)")
    name, found = detect_layout(root)
    options = {**found, **options}
    dataset = build_dataset(name, split, root, transforms, **options)
    counts: dict[str, int] = {}
    for other in [*dataset_splits(DATASETS[name], root, options), split]:
        same = {SPLIT_NAMES.get(n, n) for n in (other, *counts)}
        if len(same) <= len(counts):  # a split already counted, by this or another name
            continue
        if SPLIT_NAMES.get(other, other) == SPLIT_NAMES.get(split, split):
            counts[other] = len(dataset)
            continue
        try:
            counts[other] = len(build_dataset(name, other, root, **options))
        except (OSError, ValueError):  # a split that cannot be read is named when asked for
            continue
    log.info("%s: %s", root, describe(name, counts, dataset.num_classes))
    dataset.detected_layout = name
    return dataset


# The same split under the names the formats give it.
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "test": "test"}  # fmt: skip

DATASETS: dict[str, Callable] = {
    "ade20k": ADE20K,
    "auto": auto,
    "camvid": CamVid,
    "cityscapes": Cityscapes,
    "coco": COCOSegmentation,
    "folder": FolderSegmentation,
    "labelme": LabelmeSegmentation,
    "roboflow": RoboflowSegmentation,
    "synthetic": SyntheticSegmentation,
    "ultralytics": UltralyticsSegmentation,
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
    params = inspect.signature(cls).parameters
    valid = sorted(set(params) - {"root", "split", "transforms", "options"})
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = sorted(set(options) - set(valid))
    if unknown and not takes_any:
        raise ValueError(f"dataset {name!r}: unknown option {', '.join(unknown)}; valid options: "
                         f"{', '.join(valid)}")  # fmt: skip
    return cls(root=root, split=split, transforms=transforms, **options)


__all__ = [
    "ADE20K",
    "CamVid",
    "LabelmeSegmentation",
    "UltralyticsSegmentation",
    "auto",
    "dataset_splits",
    "describe",
    "detect_layout",
    "DATASETS",
    "IGNORE_INDEX",
    "COCOSegmentation",
    "Cityscapes",
    "FolderSegmentation",
    "Preset",
    "RoboflowSegmentation",
    "SPLIT_NAMES",
    "SyntheticSegmentation",
    "VOCSegmentation",
    "build_dataset",
    "eval_preset",
    "pad_collate",
    "train_preset",
    "worker_init",
]
