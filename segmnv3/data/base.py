"""What every dataset adapter shares: an item is ``load(i)`` passed through ``transforms``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


class SegmentationDataset:
    """Subclasses implement ``__len__``, ``load(i)`` (the raw RGB uint8 image and uint8 mask)
    and ``filename(i)``; ``transforms(image, mask)``, when set, makes the item."""

    transforms: Callable | None = None

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __getitem__(self, index: int):
        image, mask = self.load(index)
        if self.transforms is not None:
            return self.transforms(image, mask)
        return image, mask


def dataset_root(root: str | Path | None, name: str) -> Path:
    """``root`` as a Path, or an error saying where the dataset's folder is set."""
    if root is None:
        raise ValueError(f"dataset {name!r} needs a root folder (data.root / --data-root)")
    return Path(root)


def ids_from_colours(
    rgb: np.ndarray,
    palette: Sequence[Sequence[int]],
    path,
    extra: dict[tuple[int, int, int], int] | None = None,
) -> np.ndarray:
    """An RGB colour mask → uint8 ids through ``palette`` (colour i is id i; ``extra`` maps
    more colours, e.g. VOC's boundary colour to 255). A colour in neither is an error naming
    the file, the colour and where it is."""
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8)
    keys |= rgb[..., 2]
    out = np.full(rgb.shape[:2], 255, np.uint8)
    known = np.zeros(rgb.shape[:2], bool)
    colours = [(tuple(c), i) for i, c in enumerate(palette)] + list((extra or {}).items())
    for (r, g, b), cls in colours:
        hit = keys == (int(r) << 16 | int(g) << 8 | int(b))
        out[hit], known[hit] = cls, True
    if not known.all():
        y, x = np.argwhere(~known)[0]
        raise ValueError(
            f"{path}: colour {tuple(int(v) for v in rgb[y, x])} at (x={x}, y={y}) is not in "
            "the palette"
        )
    return out


class PairedFiles(SegmentationDataset):
    """An adapter over ``images`` (paths) with a mask file each: length and file names."""

    images: list[Path]

    def __len__(self) -> int:
        return len(self.images)

    def filename(self, index: int) -> str:
        return self.images[index].stem


def pair_masks(images: list[Path], mask_of: Callable[[Path], Path], what: str) -> list[Path]:
    """Each image's mask file; a missing one is an error naming both."""
    masks = [mask_of(p) for p in images]
    for image, mask in zip(images, masks, strict=True):
        if not mask.is_file():
            raise FileNotFoundError(f"{what}: missing mask {mask} for {image}")
    return masks
