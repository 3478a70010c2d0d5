"""Cityscapes in its official layout, label ids mapped to the 19 train ids on the fly.

root/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
root/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

Also as CVAT's "Cityscapes 1.0" export writes it (through Datumaro): a ``label_colors.txt``
("r g b name" lines) names the task's own classes, ``leftImg8bit/<subset>/<name>_leftImg8bit
.<ext>`` holds the images as uploaded and ``gtFine/<subset>/<name>_gtFine_labelIds.png`` the
class indices (0 = background, unlabelled). Subsets are the task's (``default`` when it has
none); images without annotations have no mask and are skipped, with a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import IMAGE_EXTENSIONS, check_same_size, read_image, read_mask
from .base import SegmentationDataset, dataset_root, read_image_like, read_label_colors

log = logging.getLogger(__name__)
LABEL_COLORS = "label_colors.txt"  # written by CVAT's Cityscapes 1.0 export, not the benchmark

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
        self.root, self.split, self.transforms = dataset_root(root, "cityscapes"), split, transforms
        self.cvat = (self.root / LABEL_COLORS).is_file()
        if self.cvat:
            self.classes, self.palette = read_label_colors(self.root / LABEL_COLORS)
            self.num_classes = len(self.classes)
        elif split not in SPLITS:
            raise ValueError(f"Cityscapes split {split!r}; choose one of {SPLITS}")
        image_dir = self.root / "leftImg8bit" / split
        if not image_dir.is_dir():
            found = ", ".join(self.splits(self.root)) or "none"
            raise FileNotFoundError(f"Cityscapes: no folder {image_dir} (expected leftImg8bit/"
                                    f"<split>/<city>/; splits there: {found})")  # fmt: skip
        pattern = "**/*_leftImg8bit.*" if self.cvat else "*/*_leftImg8bit.png"
        self.images = sorted(p for p in image_dir.glob(pattern)
                             if p.suffix.lower() in IMAGE_EXTENSIONS)  # fmt: skip
        if not self.images:
            raise FileNotFoundError(f"Cityscapes: no {pattern.split('/')[-1]} files under "
                                    f"{image_dir}")  # fmt: skip
        self.masks: list[Path | None] = [self._mask_of(image) for image in self.images]
        if self.cvat:
            self._drop_unlabelled()

    @staticmethod
    def splits(root: str | Path) -> list[str]:
        """The split folders under ``leftImg8bit/``."""
        folder = Path(root) / "leftImg8bit"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def _mask_of(self, image: Path) -> Path | None:
        if self.split == "test" and not self.cvat:
            return None
        image_dir = self.root / "leftImg8bit" / self.split
        stem = str(image.relative_to(image_dir)).rsplit("_leftImg8bit", 1)[0]
        mask = self.root / "gtFine" / self.split / f"{stem}_gtFine_labelIds.png"
        if not mask.is_file() and not self.cvat:
            raise FileNotFoundError(f"Cityscapes: missing label {mask} for image {image}")
        return mask

    def _drop_unlabelled(self) -> None:
        """CVAT writes no mask for an image without annotations: such images are skipped."""
        for mask in self.masks:
            colour = mask.with_name(mask.name.replace("_labelIds.png", "_color.png"))
            if not mask.is_file() and colour.is_file():
                raise FileNotFoundError(f"Cityscapes (CVAT export): missing {mask} (its "
                                        f"{colour.name} is there)")  # fmt: skip
        kept = [(i, m) for i, m in zip(self.images, self.masks, strict=True) if m.is_file()]
        if len(kept) < len(self.images):
            first = next(i for i, m in zip(self.images, self.masks, strict=True) if not m.is_file())
            log.warning("cityscapes (CVAT export) %s: skipped %d image(s) without a "
                        "*_gtFine_labelIds.png (not annotated), first %s", self.split,
                        len(self.images) - len(kept), first)  # fmt: skip
        if not kept:
            raise FileNotFoundError(f"Cityscapes: no *_gtFine_labelIds.png masks under "
                                    f"{self.root / 'gtFine' / self.split}")  # fmt: skip
        self.images, self.masks = [i for i, _ in kept], [m for _, m in kept]

    def __len__(self) -> int:
        return len(self.images)

    def filename(self, index: int) -> str:
        """``<city>_<seq>_<frame>`` of item ``index``."""
        return self.images[index].name.rsplit("_leftImg8bit", 1)[0]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw item: RGB uint8 image and uint8 train-id mask, before transforms."""
        mask_path = self.masks[index]
        if mask_path is None:
            image = read_image(self.images[index], exif=False)
            return image, np.full(image.shape[:2], 255, dtype=np.uint8)
        ids = read_mask(mask_path)
        if ids.ndim != 2 or ids.dtype != np.uint8:
            raise ValueError(f"{mask_path}: expected a single-channel 8-bit labelIds PNG")
        if self.cvat:  # CVAT draws on the upright photo; its ids are the classes themselves
            image = read_image_like(self.images[index], ids.shape)
            check_same_size(image, ids, self.images[index], mask_path)
            return image, self._checked_cvat_ids(ids, mask_path)
        image = read_image(self.images[index], exif=False)
        check_same_size(image, ids, self.images[index], mask_path)
        if ids.max(initial=0) >= NUM_LABEL_IDS:
            found = sorted(int(v) for v in np.unique(ids[ids >= NUM_LABEL_IDS]))[:5]
            hint = " (it looks like train ids, a *_labelTrainIds.png)" if found == [255] else ""
            raise ValueError(
                f"{mask_path}: values {found} are not Cityscapes label ids (0…"
                f"{NUM_LABEL_IDS - 1}){hint}; expected the *_gtFine_labelIds.png files"
            )
        return image, ID_TO_TRAIN_ID[ids]

    def _checked_cvat_ids(self, ids: np.ndarray, mask_path: Path) -> np.ndarray:
        bad = (ids >= self.num_classes) & (ids != 255)
        if bad.any():
            raise ValueError(f"{mask_path}: ids {sorted(np.unique(ids[bad]).tolist())[:10]} are "
                             f"not classes of {self.root / LABEL_COLORS} (0…"
                             f"{self.num_classes - 1})")  # fmt: skip
        return ids
