"""CamVid as CVAT's "CamVid 1.0" export writes it (through Datumaro).

root/label_colors.txt            "r g b name" per class; (0, 0, 0) is id 0 (background when
                                 no line has that colour)
root/<split>.txt                 "/<split>/<name>.jpg <split>annot/<name>.png" per image
                                 (quoted when a path has a space; no mask: not annotated)
root/<split>/<name>.jpg          the images as uploaded
root/<split>annot/<name>.png     colour masks (single-channel masks of class ids are read too)
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .base import (
    PairedFiles,
    dataset_root,
    ids_from_colours,
    read_label_colors,
    read_pair,
)

log = logging.getLogger(__name__)
LABEL_COLORS = "label_colors.txt"


def read_listing(path: Path) -> list[tuple[str, str | None]]:
    """The (image, mask or None) pairs of a CamVid ``<split>.txt``."""
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            parts = shlex.split(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {line!r}: {exc}") from None
        if len(parts) > 2:
            raise ValueError(f"{path}:{number}: {line!r} is not 'image [mask]' (quote a path "
                             "with spaces)")  # fmt: skip
        pairs.append((parts[0].lstrip("/"), parts[1].lstrip("/") if len(parts) > 1 else None))
    return pairs


class CamVid(PairedFiles):
    """A CVAT CamVid 1.0 export; ``split`` is a subset's name (``<split>.txt``)."""

    def __init__(self, root: str | Path, split: str = "train",
                 transforms: Callable | None = None) -> None:  # fmt: skip
        self.root, self.split = dataset_root(root, "camvid"), split
        self.transforms, colours = transforms, self.root / LABEL_COLORS
        if not colours.is_file():
            raise FileNotFoundError(f"camvid dataset: no {colours} (CVAT's CamVid 1.0 export "
                                    "writes one, naming the classes)")  # fmt: skip
        self.classes, self.palette = read_label_colors(colours)
        self.num_classes = len(self.classes)
        listing = self.root / f"{split}.txt"
        if not listing.is_file():
            raise FileNotFoundError(f"camvid dataset: no split file {listing} (splits there: "
                                    f"{', '.join(self.splits(self.root)) or 'none'})")  # fmt: skip
        pairs = read_listing(listing)
        unlabelled = [image for image, mask in pairs if mask is None]
        if unlabelled:
            log.warning("camvid %s: skipped %d image(s) without a mask in %s (not annotated), "
                        "first %s", split, len(unlabelled), listing, unlabelled[0])  # fmt: skip
        kept = [(self.root / image, self.root / mask) for image, mask in pairs if mask]
        if not kept:
            raise ValueError(f"{listing}: lists no image with a mask")
        self.images, self.masks = [i for i, _ in kept], [m for _, m in kept]
        for image, mask in kept:
            for path in (image, mask):
                if not path.is_file():
                    raise FileNotFoundError(f"camvid dataset: {listing} lists {path}, which "
                                            "is missing")  # fmt: skip

    @staticmethod
    def splits(root: str | Path) -> list[str]:
        """The subsets: each ``<name>.txt`` beside a ``<name>annot/`` folder."""
        root = Path(root)
        return sorted(p.stem for p in root.glob("*.txt") if (root / f"{p.stem}annot").is_dir())

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.images[index], self.masks[index]
        image, mask = read_pair(image_path, mask_path)
        if mask.ndim == 3:
            return image, ids_from_colours(mask, self.palette, mask_path)
        bad = (mask >= self.num_classes) & (mask != 255)
        if bad.any():
            raise ValueError(f"{mask_path}: ids {sorted(np.unique(mask[bad]).tolist())[:10]} "
                             f"are not classes of {self.root / LABEL_COLORS}")  # fmt: skip
        return image, mask.astype(np.uint8)
