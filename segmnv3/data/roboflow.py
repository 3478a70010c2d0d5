"""Roboflow's "Semantic Segmentation Masks" export (png-mask-semantic): ``train/``,
``valid/`` and ``test/`` folders, each holding ``<name>_jpg.rf.<hash>.jpg`` images beside
``<same stem>_mask.png`` single-channel masks of pixel values, and a ``_classes.csv``
("Pixel Value, Class") naming each value."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import IMAGE_EXTENSIONS
from ..viz import default_palette
from .base import PairedFiles, dataset_root, pair_masks, read_pair, single_channel

SPLITS = {"train": "train", "val": "valid", "valid": "valid", "test": "test"}


def read_classes_csv(path: Path) -> list[str]:
    """The class names of ``_classes.csv``, by pixel value 0, 1, 2, … (all present)."""
    with open(path, newline="") as f:
        rows = [[c.strip() for c in row] for row in csv.reader(f) if any(c.strip() for c in row)]
    if not rows or [c.lower() for c in rows[0][:2]] != ["pixel value", "class"]:
        raise ValueError(f"{path}: the first line must be the header 'Pixel Value, Class'")
    names: dict[int, str] = {}
    for number, row in enumerate(rows[1:], 2):
        if len(row) < 2 or not row[0].isdigit() or not row[1]:
            raise ValueError(f"{path}:{number}: {','.join(row)!r} is not 'value, class name'")
        names[int(row[0])] = row[1]
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{path}: pixel values {sorted(names)} are not 0…{len(names) - 1}")
    return [names[i] for i in range(len(names))]


class RoboflowSegmentation(PairedFiles):
    """A Roboflow png-mask-semantic export; ``split`` is train, val/valid or test."""

    def __init__(self, root: str | Path, split: str = "train",
                 transforms: Callable | None = None) -> None:  # fmt: skip
        self.root = dataset_root(root, "roboflow")
        if split not in SPLITS:
            raise ValueError(f"roboflow split {split!r}; choose one of {', '.join(SPLITS)}")
        self.transforms, folder = transforms, self.root / SPLITS[split]
        classes_file = folder / "_classes.csv"
        if not classes_file.is_file():
            raise FileNotFoundError(f"roboflow dataset: no {classes_file} (is this a "
                                    "'Semantic Segmentation Masks' export?)")  # fmt: skip
        self.classes = read_classes_csv(classes_file)
        self.num_classes, self.palette = len(self.classes), default_palette(len(self.classes))
        self.images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                             and not p.stem.endswith("_mask"))  # fmt: skip
        if not self.images:
            raise FileNotFoundError(f"roboflow dataset: no images in {folder}")
        self.masks = pair_masks(self.images, lambda p: p.with_name(f"{p.stem}_mask.png"),
                                "roboflow dataset")  # fmt: skip

    @staticmethod
    def splits(root: str | Path) -> list[str]:
        """train, val and test, where their folder has a ``_classes.csv``."""
        folders = {"train": "train", "val": "valid", "test": "test"}
        return [s for s, f in folders.items() if (Path(root) / f / "_classes.csv").is_file()]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.images[index], self.masks[index]
        image, mask = read_pair(image_path, mask_path)
        mask = single_channel(mask, mask_path, "Roboflow's hold pixel values")
        bad = (mask >= self.num_classes) & (mask != 255)
        if bad.any():
            raise ValueError(f"{mask_path}: values {sorted(np.unique(mask[bad]).tolist())[:10]} "
                             f"are not in {mask_path.parent / '_classes.csv'}")  # fmt: skip
        return image, mask.astype(np.uint8)
