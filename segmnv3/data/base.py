"""What every dataset adapter shares: an item is ``load(i)`` passed through ``transforms``."""

from __future__ import annotations

from collections.abc import Callable
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
