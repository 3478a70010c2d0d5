"""What every dataset adapter shares: an item is ``load(i)`` passed through ``transforms``."""

from __future__ import annotations

from collections.abc import Callable

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
