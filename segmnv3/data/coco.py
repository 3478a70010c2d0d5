"""COCO instances turned into semantic masks, as torchvision's segmentation reference does.

root/<split><year>/*.jpg
root/annotations/instances_<split><year>.json

Or a COCO file at any path, with its own categories: ``annotations=`` (the file) and
``images=`` (the folder; default the file's). Two tools' exports are found by themselves:
Roboflow's ``root/<train|valid|test>/_annotations.coco.json`` beside the images, and CVAT's
COCO 1.0 (Datumaro's) ``root/annotations/instances_<subset>.json`` with
``root/images/<subset>/``. A category that only
groups others (their ``supercategory``, as Roboflow's id 0 is) and has no annotation is not
a class. Such files' images are read upright when their EXIF orientation gives the
annotated size (annotation tools draw on the upright photo); the official COCO is read as
stored, as torchvision does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from ..hub import VOC_CLASSES, VOC_PALETTE
from ..io import check_same_size, read_image, read_mask, write_png
from ..viz import default_palette
from .base import SegmentationDataset, dataset_root, read_image_like
from .coco_file import annotations_by_image, checked_image, classes_of, field, load_json

ROBOFLOW_FILE = "_annotations.coco.json"
ROBOFLOW_SPLITS = {"train": "train", "val": "valid", "valid": "valid", "test": "test"}

# COCO's 80 thing categories: (category id, name).
COCO_CATEGORIES = [
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
    (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"),
    (13, "stop sign"), (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"),
    (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"), (22, "elephant"), (23, "bear"),
    (24, "zebra"), (25, "giraffe"), (27, "backpack"), (28, "umbrella"), (31, "handbag"),
    (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"),
    (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"),
    (46, "wine glass"), (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"),
    (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"), (56, "broccoli"),
    (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"),
    (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"),
    (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"),
    (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"),
    (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
]  # fmt: skip

# torchvision's 21-class protocol: background + the 20 VOC classes, by COCO category id.
VOC_CATEGORY_IDS = [0, 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72]
TRAIN_MIN_AREA = 1000  # torchvision drops train images whose kept annotations cover <= this


def decode_segmentation(segm, height: int, width: int) -> np.ndarray:
    """An annotation's ``segmentation`` (polygons, uncompressed or compressed RLE) → bool H×W."""
    if isinstance(segm, list):  # polygons: one object may have several parts
        rles = mask_utils.frPyObjects(segm, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segm, dict) and isinstance(segm.get("counts"), list):
        rle = mask_utils.frPyObjects(segm, height, width)
    elif isinstance(segm, dict) and isinstance(segm.get("counts"), str | bytes):
        counts = segm["counts"]
        rle = {
            "size": segm["size"],
            "counts": counts.encode() if isinstance(counts, str) else counts,
        }
    else:
        raise ValueError(f"unknown segmentation format {type(segm).__name__}")
    return mask_utils.decode(rle).astype(bool)


def semantic_mask(anns: list[dict], cat_to_class: dict[int, int], height: int, width: int):
    """torchvision's rule: each kept instance paints its class; pixels of 2+ instances → 255."""
    target = np.zeros((height, width), np.uint8)
    count = np.zeros((height, width), np.uint8)
    for ann in anns:
        cls = cat_to_class.get(ann["category_id"])
        if cls is None:
            continue
        m = decode_segmentation(ann["segmentation"], height, width)
        target[m] = np.maximum(target[m], cls)
        count += m
    target[count > 1] = 255
    return target


class COCOSegmentation(SegmentationDataset):
    """COCO as semantic segmentation. ``categories="voc"``: torchvision's 21 classes;
    ``"all"``: background + the 80 thing classes. Items are ``(image, mask)``.

    Train images whose kept annotations cover ``TRAIN_MIN_AREA`` px or less are dropped (as
    torchvision's reference does); val keeps every image. ``cache_dir`` stores decoded masks
    as PNGs so later epochs skip the polygon decoding.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        year: int = 2017,
        categories: str | None = None,
        transforms: Callable | None = None,
        cache_dir: str | Path | None = None,
        annotations: str | Path | None = None,
        images: str | Path | None = None,
    ) -> None:
        self.split, self.transforms = split, transforms
        ann_file, self.image_dir = self._locate(root, split, year, annotations, images)
        self.official = annotations is None and ann_file.name == f"instances_{split}{year}.json"
        categories = categories or ("voc" if self.official else "all")
        if categories not in ("voc", "all"):
            raise ValueError(f"COCO categories {categories!r}; choose 'voc' or 'all'")
        data, digest = load_json(ann_file)
        known = {c["id"]: c["name"] for c in classes_of(data, ann_file)}
        if categories == "voc":
            ids, self.classes, self.palette = VOC_CATEGORY_IDS, VOC_CLASSES, VOC_PALETTE
            self.cat_to_class = {cat: i for i, cat in enumerate(ids) if cat != 0}
        else:
            self.classes = ["background"] + [known[i] for i in sorted(known)]
            self.palette = default_palette(len(self.classes))
            self.cat_to_class = {cat: i for i, cat in enumerate(sorted(known), 1)}
        self.num_classes = len(self.classes)
        infos = [checked_image(info, ann_file) for info in data["images"]]
        by_image = annotations_by_image(data["annotations"], known, self.cat_to_class,
                                         {i["id"]: i for i in infos}, ann_file)  # fmt: skip
        drop_small = self.official and split == "train"
        self.images = []
        for info in sorted(infos, key=lambda i: i["id"]):
            anns = by_image.get(info["id"], [])
            if drop_small and sum(field(a, "area", ann_file) for a in anns) <= TRAIN_MIN_AREA:
                continue
            self.images.append((info, anns))
        if not self.images:
            raise ValueError(f"COCO: {ann_file} gives no usable images for split {split!r}")
        self.cache_dir = None
        if cache_dir is not None:  # keyed by the annotation file's content: edits invalidate it
            self.cache_dir = Path(cache_dir) / f"{ann_file.stem}_{categories}_{digest[:12]}"

    @staticmethod
    def _locate(root, split, year, annotations, images) -> tuple[Path, Path]:
        """The annotation file and the image folder: given, Roboflow's, or the official."""
        if annotations is not None:
            ann = Path(annotations)
            if root is not None and not ann.is_absolute() and (Path(root) / ann).exists():
                ann = Path(root) / ann
            folder = Path(images) if images is not None else ann.parent
            if root is not None and images is not None and not folder.is_absolute():
                folder = Path(root) / folder if (Path(root) / folder).is_dir() else folder
        else:
            root = dataset_root(root, "coco")
            roboflow = root / ROBOFLOW_SPLITS.get(split, split) / ROBOFLOW_FILE
            cvat = root / "annotations" / f"instances_{split}.json"
            if roboflow.is_file():
                ann, folder = roboflow, roboflow.parent
            elif cvat.is_file():  # CVAT's COCO 1.0 (Datumaro): subsets, no year
                ann, folder = cvat, root / "images" / split
            else:
                if split not in ("train", "val"):
                    raise ValueError(f"COCO split {split!r}; choose 'train' or 'val'")
                ann = root / "annotations" / f"instances_{split}{year}.json"
                folder = root / f"{split}{year}"
        if not folder.is_dir():
            raise FileNotFoundError(f"COCO: no image folder {folder}")
        return ann, folder

    @staticmethod
    def splits(root: str | Path, annotations=None, year: int = 2017) -> list[str]:
        root = Path(root)
        if annotations is not None:
            return ["train", "val"]  # one file: every split reads it
        found = [s for s, f in ROBOFLOW_SPLITS.items() if s != "valid"
                 and (root / f / ROBOFLOW_FILE).is_file()]  # fmt: skip
        official = [s for s in ("train", "val")
                    if (root / "annotations" / f"instances_{s}{year}.json").is_file()]  # fmt: skip
        cvat = [p.stem.removeprefix("instances_") for p in (root / "annotations").glob("*.json")]
        cvat = [s for s in cvat if (root / "images" / s).is_dir()]
        return found or official or sorted(cvat)

    def __len__(self) -> int:
        return len(self.images)

    def filename(self, index: int) -> str:
        return Path(self.images[index][0]["file_name"]).stem

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        info, anns = self.images[index]
        image_path = self.image_dir / info["file_name"]
        size = (info["height"], info["width"])
        image = read_image(image_path, exif=False) if self.official else read_image_like(
            image_path, size)  # fmt: skip
        if image.shape[:2] != size:
            raise ValueError(
                f"{image_path}: image is {image.shape[1]}×{image.shape[0]} but the annotation "
                f"file says {info['width']}×{info['height']}"
            )
        cached = self.cache_dir / f"{info['id']}.png" if self.cache_dir else None
        if cached is not None and cached.is_file():
            mask = read_mask(cached)
            check_same_size(image, mask, image_path, cached)
            return image, mask
        mask = semantic_mask(anns, self.cat_to_class, info["height"], info["width"])
        if cached is not None:
            write_png(cached, mask)
        return image, mask
