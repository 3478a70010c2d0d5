"""A folder of labelme JSON files beside their images, painted as labelme2voc paints them.

Each ``<name>.json`` holds ``shapes`` (``label``, ``points``, ``shape_type``), the image's
``imagePath`` (relative to the JSON) or its bytes (``imageData``, base64), and
``imageHeight``/``imageWidth``. Shapes are painted in order, later over earlier: polygons
(and ``oriented_rectangle``), rectangles, circles and ``mask`` shapes (a base64 PNG over the
box of its two points); ``line``, ``linestrip``, ``point`` and ``points`` mark no region and
are left out. Pixels no shape covers are ``_background_`` (class 0); ``__ignore__`` is 255.

Classes: the ``labels=`` option (a labels file as labelme2voc takes it, or a list), else
``root/labels.txt``, else every label in the folder's files, sorted. Splits: the ``<split>/``
folders under ``root`` when there are any; otherwise the files under ``root`` are split by a
hash of their names, ``val_fraction`` of them (at least one) for val.

labelme turns a photo upright as its EXIF orientation says when it opens it, so the shapes
are on the upright picture: images from ``imagePath`` are read upright; ``imageData`` (which
labelme writes already turned) is read as stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path, PureWindowsPath

import numpy as np
from PIL import Image, ImageDraw

from ..io import decode_image, read_image
from ..viz import default_palette
from .base import SegmentationDataset, dataset_root

log = logging.getLogger(__name__)
BACKGROUND, IGNORE = "_background_", "__ignore__"
REGION_TYPES = ("polygon", "oriented_rectangle", "rectangle", "circle", "mask")
SKIPPED_TYPES = ("line", "linestrip", "point", "points")
LABELS_FILE = "labels.txt"
SLACK = 1.0  # px a point may lie outside the image (tools snap to the border's far side)


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise ValueError(f"{path}: not a labelme file (no 'shapes' list); move other JSON "
                         "files out of the dataset folder")  # fmt: skip
    if not doc.get("imageData") and not doc.get("imagePath"):
        raise ValueError(f"{path}: has neither imageData nor imagePath")
    return doc


def read_labels(labels: str | Path | Sequence[str]) -> list[str]:
    """Class names from a labels file (one per line, labelme2voc's: ``__ignore__`` marks
    the ignored label, ``_background_`` is class 0 and is added first when missing)."""
    if isinstance(labels, str | Path):
        path = Path(labels)
        if not path.is_file():
            raise FileNotFoundError(f"labelme dataset: labels file {path} not found")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        names = [str(n).strip() for n in labels]
    names = [n for n in names if n != IGNORE]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"labelme labels {labels}: {twice} listed twice")
    return names if names and names[0] == BACKGROUND else [BACKGROUND] + [
        n for n in names if n != BACKGROUND]  # fmt: skip


def _hash_split(files: list[Path], root: Path, fraction: float) -> dict[str, list[Path]]:
    if not 0 < fraction < 1:
        raise ValueError(f"labelme dataset: val_fraction {fraction} is not between 0 and 1")
    order = sorted(files, key=lambda p: hashlib.sha1(str(p.relative_to(root)).encode()).digest())
    n_val = max(1, round(len(files) * fraction)) if len(files) > 1 else 0
    return {"val": sorted(order[:n_val]), "train": sorted(order[n_val:])}


class LabelmeSegmentation(SegmentationDataset):
    """labelme JSON files as semantic masks; items are ``(image, mask)``."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transforms: Callable | None = None,
        labels: str | Path | Sequence[str] | None = None,
        val_fraction: float = 0.2,
    ) -> None:
        self.root, self.split = dataset_root(root, "labelme"), split
        self.transforms = transforms
        everything = sorted(self.root.rglob("*.json"))
        if not everything:
            raise FileNotFoundError(f"labelme dataset: no .json files under {self.root}")
        folders = self.splits(self.root)
        if (self.root / split).is_dir():
            self.files = sorted((self.root / split).rglob("*.json"))
        elif not folders and split in ("train", "val"):
            self.files = _hash_split(everything, self.root, val_fraction)[split]
            log.info("labelme %s: no split folders, %d of %d files by name hash", split,
                     len(self.files), len(everything))  # fmt: skip
        else:
            raise FileNotFoundError(f"labelme dataset: no folder {self.root / split} (splits "
                                    f"there: {', '.join(folders) or 'none'})")  # fmt: skip
        if not self.files:
            raise FileNotFoundError(f"labelme dataset: no .json files for split {split!r}")
        docs = {path: _read_json(path) for path in everything}
        if labels is None and (self.root / LABELS_FILE).is_file():
            labels = self.root / LABELS_FILE
        if labels is None:
            found = {s.get("label") for d in docs.values() for s in d["shapes"]}
            labels = sorted(str(n) for n in found - {IGNORE, BACKGROUND, None})
        self.classes = read_labels(labels)
        self.num_classes, self.palette = len(self.classes), default_palette(len(self.classes))
        self.ids = {name: i for i, name in enumerate(self.classes)} | {IGNORE: 255}
        for path in self.files:
            self._check_labels(path, docs[path])

    @staticmethod
    def splits(root: str | Path) -> list[str]:
        """Subfolders of ``root`` holding labelme files, or train/val by hash when none do."""
        root = Path(root)
        return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.rglob("*.json")))

    def _check_labels(self, path: Path, doc: dict) -> None:
        for k, shape in enumerate(doc["shapes"]):
            label = shape.get("label") if isinstance(shape, dict) else None
            if label not in self.ids:
                raise ValueError(f"{path}: shape {k} has label {label!r}, which is not a class "
                                 f"({', '.join(self.classes)}); add it to the labels "
                                 "(labels= or labels.txt)")  # fmt: skip

    def __len__(self) -> int:
        return len(self.files)

    def filename(self, index: int) -> str:
        return self.files[index].stem

    def _image(self, path: Path, doc: dict) -> np.ndarray:
        if doc.get("imageData"):
            try:
                data = np.frombuffer(base64.b64decode(doc["imageData"], validate=True), np.uint8)
            except (binascii.Error, ValueError):
                raise ValueError(f"{path}: imageData is not base64") from None
            image = decode_image(data, f"{path} (imageData)", exif=False)
        else:
            image = read_image(path.parent / PureWindowsPath(doc["imagePath"]).as_posix())
        declared = (doc.get("imageHeight"), doc.get("imageWidth"))
        if None not in declared and tuple(declared) != image.shape[:2]:
            raise ValueError(f"{path}: says the image is {declared[1]}×{declared[0]} but it is "
                             f"{image.shape[1]}×{image.shape[0]} (replaced or resized after "
                             "labelling?)")  # fmt: skip
        return image

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.files[index]
        doc = _read_json(path)
        image = self._image(path, doc)
        mask = np.zeros(image.shape[:2], np.uint8)
        for k, shape in enumerate(doc["shapes"]):
            region = shape_region(shape, image.shape[:2], f"{path}: shape {k}")
            if region is not None:
                mask[region] = self.ids[shape["label"]]
        return image, mask


def _points(shape: dict, size: tuple[int, int], where: str) -> list[tuple[float, float]]:
    points = shape.get("points")
    try:
        xy = [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: points {points!r} are not [[x, y], …]") from None
    h, w = size
    for x, y in xy:
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"{where}: point ({x}, {y}) is not finite")
        if not (-SLACK <= x <= w + SLACK and -SLACK <= y <= h + SLACK):
            raise ValueError(f"{where} ({shape['label']!r}): point ({x:g}, {y:g}) is outside "
                             f"the {w}×{h} image (was the image replaced or resized?)")  # fmt: skip
    return xy


def _count_check(xy: list, kind: str, where: str) -> None:
    need = {"rectangle": 2, "circle": 2, "mask": 2, "oriented_rectangle": 4}.get(kind)
    if (need and len(xy) != need) or (kind == "polygon" and len(xy) < 3):
        raise ValueError(f"{where}: a {kind} needs {need or 'at least 3'} points, has {len(xy)}")


def shape_region(shape: dict, size: tuple[int, int], where: str) -> np.ndarray | None:
    """The pixels a labelme shape paints (bool H×W), None for a shape that marks no region."""
    kind = shape.get("shape_type") or "polygon"
    if kind in SKIPPED_TYPES:
        return None
    if kind not in REGION_TYPES:
        raise ValueError(f"{where}: unknown shape_type {kind!r}; labelme's are "
                         f"{', '.join(REGION_TYPES + SKIPPED_TYPES)}")  # fmt: skip
    xy = _points(shape, size, where)
    _count_check(xy, kind, where)
    if kind == "mask":
        return _mask_region(shape, xy, size, where)
    canvas = Image.new("L", (size[1], size[0]), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "rectangle":
        (x0, y0), (x1, y1) = xy
        draw.rectangle(((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))), fill=1, outline=1)
    elif kind == "circle":
        (cx, cy), (px, py) = xy
        r = math.hypot(cx - px, cy - py)
        draw.ellipse(((cx - r, cy - r), (cx + r, cy + r)), fill=1, outline=1)
    else:
        draw.polygon(xy, fill=1, outline=1)
    return np.asarray(canvas, bool)


def _mask_region(shape: dict, xy, size: tuple[int, int], where: str) -> np.ndarray:
    try:
        data = np.frombuffer(base64.b64decode(shape.get("mask") or "", validate=True), np.uint8)
        patch = decode_image(data, where, exif=False)[..., 0] > 0
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: a mask shape whose 'mask' is not a base64 PNG") from None
    region = np.zeros(size, bool)
    x0, y0 = (round(v) for v in xy[0])
    ys, xs = slice(max(y0, 0), min(y0 + patch.shape[0], size[0])), slice(
        max(x0, 0), min(x0 + patch.shape[1], size[1]))  # fmt: skip
    region[ys, xs] = patch[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return region
