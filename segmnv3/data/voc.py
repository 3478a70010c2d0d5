"""PASCAL VOC 2012 segmentation, and CVAT's "Segmentation mask 1.1" export (the same layout).

``root`` is the folder holding ``JPEGImages/``, ``SegmentationClass/`` and
``ImageSets/Segmentation/<split>.txt`` (``VOCdevkit/VOC2012``; ``root`` may also be
``VOCdevkit`` or its parent). Masks are palette PNGs whose indices are the class ids, with
255 on object boundaries (ignored). CVAT writes a ``labelmap.txt`` (``name:r,g,b:parts:
actions`` per line) naming its own classes in order, and may write masks as RGB colours,
which are mapped back through those colours. Without a labelmap, the 21 VOC classes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..hub import VOC_CLASSES, VOC_PALETTE
from .base import SegmentationDataset, add_class, dataset_root, ids_from_colours, read_pair

BOUNDARY_COLOUR = (224, 224, 192)  # VOC palette entry 255: the object boundaries (ignored)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_labelmap(path: Path) -> tuple[list[str], list[tuple[int, int, int]]]:
    """CVAT's ``labelmap.txt``: class names and colours in order (comments start with #)."""
    classes, palette = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(":")
        colour = _colour(parts[1]) if len(parts) > 1 and parts[0] else None
        if colour is None:
            raise ValueError(f"{path}:{number}: {line!r} is not 'name:r,g,b:parts:actions'")
        add_class(classes, palette, parts[0], colour, f"{path}:{number}")
    if not classes:
        raise ValueError(f"{path}: no classes in it")
    return classes, palette


def _colour(text: str) -> tuple[int, int, int] | None:
    values = text.split(",")
    if len(values) != 3 or not all(v.strip().isdigit() for v in values):
        return None
    colour = tuple(int(v) for v in values)
    return colour if all(v <= 255 for v in colour) else None  # type: ignore[return-value]


def voc_root(root: Path) -> Path:
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise FileNotFoundError(f"voc dataset: no JPEGImages/ under {root} (nor VOC2012/, "
                            "VOCdevkit/VOC2012/)")  # fmt: skip


class VOCSegmentation(SegmentationDataset):
    """PASCAL VOC / CVAT Segmentation mask 1.1; items are ``(image, mask)``."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transforms: Callable | None = None,
    ) -> None:
        self.root, self.split = voc_root(dataset_root(root, "voc")), split
        self.transforms = transforms
        labelmap = self.root / "labelmap.txt"
        if labelmap.is_file():
            self.classes, self.palette = read_labelmap(labelmap)
        else:
            self.classes, self.palette = list(VOC_CLASSES), [tuple(c) for c in VOC_PALETTE]
        self.num_classes = len(self.classes)
        sets = self.root / "ImageSets" / "Segmentation"
        listing = sets / f"{split}.txt"
        if not listing.is_file():
            found = sorted(p.stem for p in sets.glob("*.txt")) if sets.is_dir() else []
            raise FileNotFoundError(f"voc dataset: no split file {listing} (splits there: "
                                    f"{', '.join(found) or 'none'})")  # fmt: skip
        self.ids = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise ValueError(f"{listing}: lists no image")

    @staticmethod
    def splits(root: str | Path) -> list[str]:
        """The lists in ``ImageSets/Segmentation/``."""
        sets = voc_root(Path(root)) / "ImageSets" / "Segmentation"
        return sorted(p.stem for p in sets.glob("*.txt"))

    def __len__(self) -> int:
        return len(self.ids)

    def filename(self, index: int) -> str:
        return self.ids[index]

    def _image_path(self, stem: str) -> Path:
        for suffix in IMAGE_SUFFIXES:
            path = self.root / "JPEGImages" / f"{stem}{suffix}"
            if path.is_file():
                return path
        raise FileNotFoundError(f"voc dataset: no image {self.root / 'JPEGImages' / stem}.jpg")

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        stem = self.ids[index]
        image_path = self._image_path(stem)
        mask_path = self.root / "SegmentationClass" / f"{stem}.png"
        image, mask = read_pair(image_path, mask_path)  # CVAT draws on the upright photo
        if mask.ndim == 3:  # CVAT's colour masks
            mask = ids_from_colours(mask, self.palette, mask_path, {BOUNDARY_COLOUR: 255})
        bad = (mask >= self.num_classes) & (mask != 255)
        if bad.any():
            raise ValueError(f"{mask_path}: ids {sorted(np.unique(mask[bad]).tolist())[:10]} are "
                             f"not classes (0…{self.num_classes - 1}) nor 255")  # fmt: skip
        return image, mask.astype(np.uint8)
