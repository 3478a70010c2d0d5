"""Ultralytics' semantic segmentation layout, as its dataset YAML describes it.

    path: .            # the dataset's folder (relative to the YAML's)
    train: images/train   # a folder, a .txt list of images, or a list of these
    val: images/val
    names: {0: background, 1: cat}   # or a list
    masks_dir: masks   # replaces the ``images`` part of each image's path

``images/<split>/<name>.jpg`` pairs with ``masks/<split>/<name>.png`` (or .bmp, .tif): a
single-channel mask of class ids, 255 = ignore. Images are read as Ultralytics reads them
(OpenCV, which turns a photo upright as its EXIF orientation says) when that is the
mask's size. The option ``data=`` names the YAML; without it, the one YAML in ``root``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from ..io import IMAGE_EXTENSIONS
from ..viz import default_palette
from .base import PairedFiles, read_pair, single_channel

SPLIT_KEYS = {"train": "train", "val": "val", "valid": "val", "validation": "val",
              "test": "test"}  # fmt: skip
MASK_SUFFIXES = (".png", ".PNG", ".bmp", ".tif")


def find_yaml(root: Path) -> Path:
    """The one dataset YAML (a mapping with ``names``) in ``root``."""
    found = []
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and ("names" in doc or "masks_dir" in doc):
            found.append(path)
    if len(found) != 1:
        what = "none" if not found else ", ".join(p.name for p in found)
        raise FileNotFoundError(f"ultralytics dataset: give data=<the dataset YAML> (YAMLs with "
                                f"names in {root}: {what})")  # fmt: skip
    return found[0]


def read_spec(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"ultralytics dataset: no YAML {path}")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: not a dataset YAML (a mapping with path, train, val, names)")
    if "names" not in spec:
        raise ValueError(f"{path}: no 'names' (the classes, e.g. names: {{0: background, "
                         "1: cat}})")  # fmt: skip
    if "masks_dir" not in spec:
        raise ValueError(f"{path}: no 'masks_dir'; segmnv3 reads Ultralytics' PNG-mask layout "
                         "(masks_dir: masks), not YOLO polygon labels")  # fmt: skip
    return spec


def class_names(names, path: Path) -> list[str]:
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        if sorted(names) != list(range(len(names))):
            raise ValueError(f"{path}: names' ids {sorted(names)} are not 0…{len(names) - 1}")
        return [str(names[i]) for i in range(len(names))]
    raise ValueError(f"{path}: names must be a list or a mapping of ids 0, 1, … to names")


def list_images(entry, base: Path, path: Path) -> list[Path]:
    """The images of a split entry: folders (searched recursively), .txt lists (one image
    per line, ``./`` relative to the list's folder) or a list of these."""
    images: list[Path] = []
    for item in entry if isinstance(entry, list) else [entry]:
        p = base / str(item)
        if p.is_dir():
            images += [f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS]
        elif p.is_file() and p.suffix == ".txt":
            lines = [line.strip() for line in p.read_text().splitlines() if line.strip()]
            images += [p.parent / line[2:] if line.startswith("./") else base / line
                       for line in lines]  # fmt: skip
        else:
            raise FileNotFoundError(f"{path}: {item!r} is neither a folder nor a .txt list "
                                    f"(looked for {p})")  # fmt: skip
    return sorted(images)


class UltralyticsSegmentation(PairedFiles):
    """An Ultralytics semantic dataset; ``split`` is train, val (valid) or test."""

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        transforms: Callable | None = None,
        data: str | Path | None = None,
    ) -> None:
        if data is None and root is None:
            raise ValueError("dataset 'ultralytics' needs data=<dataset YAML> or a root folder")
        yaml_path = Path(data) if data is not None else find_yaml(Path(root))
        if data is not None and root is not None and not yaml_path.is_absolute():
            yaml_path = Path(root) / yaml_path if (Path(root) / yaml_path).is_file() else yaml_path
        spec, self.transforms = read_spec(yaml_path), transforms
        self.yaml, self.split = yaml_path, split
        self.classes = class_names(spec["names"], yaml_path)
        self.num_classes, self.palette = len(self.classes), default_palette(len(self.classes))
        self.root = yaml_path.parent / str(spec.get("path") or ".")
        key = SPLIT_KEYS.get(split)
        if key is None or not spec.get(key):
            have = [k for k in ("train", "val", "test") if spec.get(k)]
            raise ValueError(f"{yaml_path}: no {split!r} split (it has {', '.join(have)})")
        self.images = list_images(spec[key], self.root, yaml_path)
        if not self.images:
            raise FileNotFoundError(f"{yaml_path}: no images for {key}: {spec[key]!r}")
        self.masks = [self._mask_of(p, str(spec["masks_dir"])) for p in self.images]

    @staticmethod
    def splits(root: str | Path, data: str | Path | None = None) -> list[str]:
        spec = read_spec(Path(data) if data else find_yaml(Path(root)))
        return [k for k in ("train", "val", "test") if spec.get(k)]

    def _mask_of(self, image: Path, masks_dir: str) -> Path:
        text, part = str(image), f"{os.sep}images{os.sep}"
        if part not in text:
            raise ValueError(f"{self.yaml}: image {image} has no 'images' folder in its path "
                             f"for masks_dir ({masks_dir}) to replace")  # fmt: skip
        stem = Path(f"{os.sep}{masks_dir}{os.sep}".join(text.rsplit(part, 1))).with_suffix("")
        for suffix in MASK_SUFFIXES:
            if stem.with_suffix(suffix).is_file():
                return stem.with_suffix(suffix)
        raise FileNotFoundError(f"ultralytics dataset: missing mask {stem}.png for {image}")

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.images[index], self.masks[index]
        image, mask = read_pair(image_path, mask_path)
        mask = single_channel(mask, mask_path, "Ultralytics masks hold class ids")
        bad = (mask >= self.num_classes) & (mask != 255)
        if bad.any():
            raise ValueError(f"{mask_path}: ids {sorted(np.unique(mask[bad]).tolist())[:10]} are "
                             f"not classes of {self.yaml} (0…{self.num_classes - 1}, "
                             "255 = ignore)")  # fmt: skip
        return image, mask.astype(np.uint8)
