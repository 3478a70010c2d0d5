"""A user's own data: ``root/images/<stem>.<ext>`` paired with ``root/masks/<stem>.png``.

Masks hold class ids (single channel, 255 = ignore), or RGB colours mapped through
``palette``. Class names (and optionally the palette) may come from ``root/classes.yaml``::

    classes: [background, cat, dog]
    palette: [[0, 0, 0], [255, 0, 0], [0, 255, 0]]   # optional
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

from ..io import IMAGE_EXTENSIONS
from .base import SegmentationDataset, dataset_root, ids_from_colours, read_pair

CLASSES_FILE = "classes.yaml"


def _read_classes_file(path: Path) -> tuple[list[str], list | None]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if isinstance(data, list):
        return [str(c) for c in data], None
    if isinstance(data, dict) and isinstance(data.get("classes"), list):
        unknown = set(data) - {"classes", "palette"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; valid: classes, palette")
        return [str(c) for c in data["classes"]], data.get("palette")
    raise ValueError(f"{path}: expected a list of class names or a mapping with 'classes'")


def _check_palette(palette, classes: list[str], where) -> list[tuple[int, int, int]]:
    """One distinct RGB colour (0…255 each) per class, or a ValueError naming ``where``."""
    if len(palette) != len(classes):
        raise ValueError(f"{where}: {len(palette)} palette colours for {len(classes)} classes")
    out: list[tuple[int, int, int]] = []
    for name, colour in zip(classes, palette, strict=True):
        ok = isinstance(colour, list | tuple) and len(colour) == 3
        if not ok or not all(isinstance(v, int | np.integer) and 0 <= v <= 255 for v in colour):
            raise ValueError(
                f"{where}: palette colour {colour!r} of class {name!r} is not three integers "
                "in 0…255"
            )
        if tuple(colour) in out:
            other = classes[out.index(tuple(colour))]
            raise ValueError(
                f"{where}: classes {other!r} and {name!r} have the same colour {list(colour)}; "
                "a colour mask could not tell them apart"
            )
        out.append(tuple(int(v) for v in colour))
    return out


def _value_map(mask_values: dict[int, int] | None) -> np.ndarray | None:
    """``data.options.mask_values`` ({stored value: class id}) as a lookup table over every
    16-bit value (the others map to themselves)."""
    if mask_values is None:
        return None
    table = np.arange(65536, dtype=np.int64)
    for stored, cls in dict(mask_values).items():
        if not all(isinstance(v, int) and 0 <= v <= 65535 for v in (stored, cls)):
            raise ValueError(f"folder dataset: mask_values {mask_values!r}: give integer "
                             "{stored value: class id} pairs, e.g. {255: 1}")  # fmt: skip
        table[stored] = cls
    return table


def _refuse_silent_binary(mask: np.ndarray, path: Path) -> None:
    """A 2-class mask holding only 0 and 255 is almost always a binary mask saved as 0/255,
    which would be read as background + ignore: say so instead of training on nothing."""
    values = set(np.unique(mask).tolist())
    if 255 in values and values <= {0, 255}:
        raise ValueError(
            f"{path}: holds only 0 and 255 for a 2-class dataset, which would read as "
            "background + ignore; if 255 marks the foreground, set "
            "data.options.mask_values={255: 1} (or {255: 255} to keep 255 as ignore)"
        )


def _check_orphan_masks(mask_dir: Path, image_dir: Path, used: set[str]) -> None:
    """A mask whose image is missing (or in a format that is not read) is named, never
    dropped silently with it."""
    orphans = sorted(p for p in mask_dir.glob("*.png") if p.name not in used)
    if not orphans:
        return
    stems = {p.stem: p for p in image_dir.iterdir()}
    first = orphans[0]
    other = stems.get(first.stem)
    why = (f"its image {other.name} is not in a format read here ({', '.join(IMAGE_EXTENSIONS)})"
           if other is not None else f"no image {first.stem}.* in {image_dir}")  # fmt: skip
    raise FileNotFoundError(f"folder dataset: {len(orphans)} mask(s) without an image, first "
                            f"{first}: {why}")  # fmt: skip


class FolderSegmentation(SegmentationDataset):
    """Images and masks paired by file stem. Items are ``(image, mask)``.

    With ``split``, the folders are looked up under ``root/<split>/`` (``classes.yaml`` may sit
    there or in ``root``).
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        images: str = "images",
        masks: str = "masks",
        classes: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        transforms: Callable | None = None,
        mask_values: dict[int, int] | None = None,
    ) -> None:
        self.root, self.transforms = dataset_root(root, "folder"), transforms
        self.mask_values = _value_map(mask_values)
        base = self.root / split if split else self.root
        image_dir, mask_dir = base / images, base / masks
        for folder in (image_dir, mask_dir):
            if not folder.is_dir():
                raise FileNotFoundError(f"folder dataset: no folder {folder}")
        classes_file = base / CLASSES_FILE
        if not classes_file.is_file():
            classes_file = self.root / CLASSES_FILE
        if classes is None and classes_file.is_file():
            classes, file_palette = _read_classes_file(classes_file)
            palette = palette if palette is not None else file_palette
        if not classes:
            raise ValueError(
                f"folder dataset {self.root}: give classes=[...] or write {classes_file}"
            )
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        where = classes_file if classes_file.is_file() else f"folder dataset {self.root}"
        self.palette = _check_palette(palette, self.classes, where) if palette else None
        self.images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.images:
            raise FileNotFoundError(f"folder dataset: no images in {image_dir}")
        self.masks = []
        for image in self.images:
            mask = mask_dir / f"{image.stem}.png"
            lossy = [
                p for p in (mask.with_suffix(".jpg"), mask.with_suffix(".jpeg")) if p.is_file()
            ]
            if not mask.is_file() and lossy:
                raise ValueError(
                    f"{lossy[0]}: a JPEG mask; masks must be lossless PNGs (JPEG changes the "
                    "ids along every edge)"
                )
            if not mask.is_file():
                raise FileNotFoundError(f"folder dataset: missing mask {mask} for {image}")
            self.masks.append(mask)
        _check_orphan_masks(mask_dir, image_dir, {m.name for m in self.masks})

    @staticmethod
    def splits(root: str | Path, images: str = "images") -> list[str]:
        """The ``<split>/`` folders holding an ``images/`` folder (none: ``root`` itself)."""
        root = Path(root)
        return sorted(p.name for p in root.iterdir() if (p / images).is_dir())

    def __len__(self) -> int:
        return len(self.images)

    def filename(self, index: int) -> str:
        return self.images[index].stem

    def _ids_from_colours(self, rgb: np.ndarray, path: Path) -> np.ndarray:
        if self.palette is None:
            raise ValueError(f"{path}: RGB mask but no palette was given to map colours to ids")
        return ids_from_colours(rgb, self.palette, path)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.images[index], self.masks[index]
        image, mask = read_pair(image_path, mask_path)
        if mask.ndim == 3:
            mask = self._ids_from_colours(mask, mask_path)
        if self.mask_values is not None:
            mask = self.mask_values[np.clip(mask, 0, 65535).astype(np.int64)]
        elif self.num_classes == 2:
            _refuse_silent_binary(mask, mask_path)
        bad = (mask >= self.num_classes) & (mask != 255)
        if bad.any():
            raise ValueError(
                f"{mask_path}: class ids {sorted(np.unique(mask[bad]).tolist())[:10]} are >= the "
                f"number of classes ({self.num_classes}); valid ids are 0…"
                f"{self.num_classes - 1} and 255 (ignore)"
            )
        return image, mask.astype(np.uint8)
