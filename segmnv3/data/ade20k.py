"""ADE20K as the MIT Scene Parsing benchmark ships it (``ADEChallengeData2016``):
``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png``
whose values are 0 ("other", ignored) and 1…150, read as the ids 0…149."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import check_same_size, read_image, read_mask
from ..viz import default_palette
from .base import PairedFiles, dataset_root, pair_masks

# The benchmark's 150 classes, in id order (its objectInfo150 names, first word of each).
ADE20K_CLASSES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp",
    "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator",
    "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow", "screen door",
    "stairway", "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower",
    "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island", "computer",
    "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman",
    "bottle", "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt",
    "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
    "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan",
    "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
]  # fmt: skip
SPLITS = {"train": "training", "training": "training", "val": "validation",
          "validation": "validation"}  # fmt: skip


class ADE20K(PairedFiles):
    """ADEChallengeData2016; ``root`` is that folder or its parent. Items are
    ``(image, mask)`` with ids 0…149 and 255 where the benchmark says "other"."""

    classes = ADE20K_CLASSES
    num_classes = len(ADE20K_CLASSES)

    def __init__(
        self, root: str | Path, split: str = "training", transforms: Callable | None = None
    ) -> None:
        root = dataset_root(root, "ade20k")
        self.root = (
            root / "ADEChallengeData2016" if (root / "ADEChallengeData2016").is_dir() else root
        )
        if split not in SPLITS:
            raise ValueError(f"ade20k split {split!r}; choose one of {', '.join(SPLITS)}")
        self.split, self.transforms = SPLITS[split], transforms
        self.palette = default_palette(self.num_classes)
        image_dir = self.root / "images" / self.split
        if not image_dir.is_dir():
            raise FileNotFoundError(f"ade20k dataset: no folder {image_dir}")
        self.images = sorted(image_dir.glob("*.jpg"))
        if not self.images:
            raise FileNotFoundError(f"ade20k dataset: no .jpg images in {image_dir}")
        annotations = self.root / "annotations" / self.split
        self.masks = pair_masks(self.images, lambda p: annotations / f"{p.stem}.png",
                                "ade20k dataset")  # fmt: skip

    @staticmethod
    def splits(root: str | Path) -> list[str]:
        root = Path(root)
        base = root / "ADEChallengeData2016" if (root / "ADEChallengeData2016").is_dir() else root
        return [s for s in ("training", "validation") if (base / "images" / s).is_dir()]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.images[index], self.masks[index]
        image, raw = read_image(image_path, exif=False), read_mask(mask_path)
        if raw.ndim != 2:
            raise ValueError(f"{mask_path}: an RGB annotation; ADE20K's are single-channel ids")
        check_same_size(image, raw, image_path, mask_path)
        if raw.max(initial=0) > self.num_classes:
            raise ValueError(f"{mask_path}: value {int(raw.max())} is over the 150 classes")
        mask = raw.astype(np.int32) - 1  # 0 ("other") becomes -1, then 255
        return image, np.where(mask < 0, 255, mask).astype(np.uint8)
