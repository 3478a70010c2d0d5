"""Cityscapes in its official layout, label ids mapped to the 19 train ids on the fly.

root/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
root/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import check_same_size, read_image, read_mask
from .base import SegmentationDataset, dataset_root

# (label id, name, colour) of the 19 classes scored by the official benchmark, in train-id
# order; from cityscapesscripts.helpers.labels. Every other id is ignored (255).
TRAIN_CLASSES = [
    (7, "road", (128, 64, 128)),
    (8, "sidewalk", (244, 35, 232)),
    (11, "building", (70, 70, 70)),
    (12, "wall", (102, 102, 156)),
    (13, "fence", (190, 153, 153)),
    (17, "pole", (153, 153, 153)),
    (19, "traffic light", (250, 170, 30)),
    (20, "traffic sign", (220, 220, 0)),
    (21, "vegetation", (107, 142, 35)),
    (22, "terrain", (152, 251, 152)),
    (23, "sky", (70, 130, 180)),
    (24, "person", (220, 20, 60)),
    (25, "rider", (255, 0, 0)),
    (26, "car", (0, 0, 142)),
    (27, "truck", (0, 0, 70)),
    (28, "bus", (0, 60, 100)),
    (31, "train", (0, 80, 100)),
    (32, "motorcycle", (0, 0, 230)),
    (33, "bicycle", (119, 11, 32)),
]
CLASSES = [name for _, name, _ in TRAIN_CLASSES]
PALETTE = [color for _, _, color in TRAIN_CLASSES]
NUM_LABEL_IDS = 34  # the official table's ids are 0 … 33 (plus -1, never stored in PNGs)

# label id → train id, for all 256 values a uint8 PNG can hold.
ID_TO_TRAIN_ID = np.full(256, 255, dtype=np.uint8)
for _train_id, (_label_id, _, _) in enumerate(TRAIN_CLASSES):
    ID_TO_TRAIN_ID[_label_id] = _train_id
# train id → label id, for writing results in the official submission format.
TRAIN_ID_TO_ID = np.zeros(256, dtype=np.uint8)
for _train_id, (_label_id, _, _) in enumerate(TRAIN_CLASSES):
    TRAIN_ID_TO_ID[_train_id] = _label_id

SPLITS = ("train", "val", "test")


class Cityscapes(SegmentationDataset):
    """Cityscapes fine annotations. Items are ``(image, mask)`` (see DESIGN.md).

    The ``test`` split has no public labels: its masks are all 255 (ignore), so the items can
    still be fed to prediction. ``filename(i)`` gives ``<city>_<seq>_<frame>`` for results.
    """

    classes = CLASSES
    palette = PALETTE
    num_classes = len(CLASSES)

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transforms: Callable | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"Cityscapes split {split!r}; choose one of {SPLITS}")
        self.root, self.split, self.transforms = dataset_root(root, "cityscapes"), split, transforms
        image_dir = self.root / "leftImg8bit" / split
        if not image_dir.is_dir():
            raise FileNotFoundError(
                f"Cityscapes: no folder {image_dir} (expected leftImg8bit/<split>/<city>/)"
            )
        self.images = sorted(image_dir.glob("*/*_leftImg8bit.png"))
        if not self.images:
            raise FileNotFoundError(f"Cityscapes: no *_leftImg8bit.png files under {image_dir}")
        self.masks: list[Path | None] = []
        for image in self.images:
            if split == "test":
                self.masks.append(None)
                continue
            stem = image.name.removesuffix("_leftImg8bit.png")
            mask = self.root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"
            if not mask.is_file():
                raise FileNotFoundError(f"Cityscapes: missing label {mask} for image {image}")
            self.masks.append(mask)

    def __len__(self) -> int:
        return len(self.images)

    def filename(self, index: int) -> str:
        """``<city>_<seq>_<frame>`` of item ``index``."""
        return self.images[index].name.removesuffix("_leftImg8bit.png")

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw item: RGB uint8 image and uint8 train-id mask, before transforms."""
        image = read_image(self.images[index], exif=False)
        mask_path = self.masks[index]
        if mask_path is None:
            return image, np.full(image.shape[:2], 255, dtype=np.uint8)
        ids = read_mask(mask_path)
        if ids.ndim != 2 or ids.dtype != np.uint8:
            raise ValueError(f"{mask_path}: expected a single-channel 8-bit labelIds PNG")
        check_same_size(image, ids, self.images[index], mask_path)
        if ids.max(initial=0) >= NUM_LABEL_IDS:
            found = sorted(int(v) for v in np.unique(ids[ids >= NUM_LABEL_IDS]))[:5]
            hint = " (it looks like train ids, a *_labelTrainIds.png)" if found == [255] else ""
            raise ValueError(
                f"{mask_path}: values {found} are not Cityscapes label ids (0…"
                f"{NUM_LABEL_IDS - 1}){hint}; expected the *_gtFine_labelIds.png files"
            )
        return image, ID_TO_TRAIN_ID[ids]
