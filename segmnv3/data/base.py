"""What every dataset adapter shares: an item is ``load(i)`` passed through ``transforms``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import check_same_size, read_image, read_mask

EXIF_ORIENTATION = 0x0112


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


def ids_from_colours(
    rgb: np.ndarray,
    palette: Sequence[Sequence[int]],
    path,
    extra: dict[tuple[int, int, int], int] | None = None,
) -> np.ndarray:
    """An RGB colour mask → uint8 ids through ``palette`` (colour i is id i; ``extra`` maps
    more colours, e.g. VOC's boundary colour to 255). A colour in neither is an error naming
    the file, the colour and where it is."""
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8)
    keys |= rgb[..., 2]
    out = np.full(rgb.shape[:2], 255, np.uint8)
    known = np.zeros(rgb.shape[:2], bool)
    colours = [(tuple(c), i) for i, c in enumerate(palette)] + list((extra or {}).items())
    for (r, g, b), cls in colours:
        hit = keys == (int(r) << 16 | int(g) << 8 | int(b))
        out[hit], known[hit] = cls, True
    if not known.all():
        y, x = np.argwhere(~known)[0]
        raise ValueError(
            f"{path}: colour {tuple(int(v) for v in rgb[y, x])} at (x={x}, y={y}) is not in "
            "the palette"
        )
    return out


class PairedFiles(SegmentationDataset):
    """An adapter over ``images`` (paths) with a mask file each: length and file names."""

    images: list[Path]

    def __len__(self) -> int:
        return len(self.images)

    def filename(self, index: int) -> str:
        return self.images[index].stem


def pair_masks(images: list[Path], mask_of: Callable[[Path], Path], what: str) -> list[Path]:
    """Each image's mask file; a missing one is an error naming both."""
    masks = [mask_of(p) for p in images]
    for image, mask in zip(images, masks, strict=True):
        if not mask.is_file():
            raise FileNotFoundError(f"{what}: missing mask {mask} for {image}")
    return masks


def exif_orientation(path: Path) -> int:
    """The EXIF orientation tag of an image file (1, upright as stored, when it has none)."""
    try:
        with Image.open(path) as pil:
            value = pil.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError):  # unreadable here: read_image names the file
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_image_like(image_path: Path, mask_shape: tuple[int, ...]) -> np.ndarray:
    """The image as its mask was drawn on it. Annotation tools show a phone photo upright, as
    its EXIF orientation says (labelme turns it on opening, CVAT since 2.1, Ultralytics reads
    with OpenCV, which turns it; Roboflow's auto-orient rewrites it upright): a photo with an
    orientation tag is read upright when its upright size is the mask's, and as stored
    otherwise (a mask drawn on the stored pixels, as the benchmarks' are). Files without a tag
    are read as stored."""
    if exif_orientation(image_path) == 1:
        return read_image(image_path, exif=False)
    upright = read_image(image_path, exif=True)
    if upright.shape[:2] == tuple(mask_shape[:2]):
        return upright
    return read_image(image_path, exif=False)


def add_class(classes: list, palette: list, name: str, colour: tuple, where: str) -> None:
    """Append a class of a label file, refusing a name or a colour given twice."""
    if name in classes:
        raise ValueError(f"{where}: class {name!r} is named twice")
    if colour in palette:
        other = classes[palette.index(colour)]
        raise ValueError(f"{where}: colour {colour} of {name!r} is also the colour of "
                         f"{other!r}: give each class its own")  # fmt: skip
    classes.append(name)
    palette.append(colour)


def read_pair(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An image and its mask file, the image read as the mask was drawn on it
    (:func:`read_image_like`); sizes that differ are an error naming both files."""
    mask = read_mask(mask_path)
    image = read_image_like(image_path, mask.shape)
    check_same_size(image, mask, image_path, mask_path)
    return image, mask


def single_channel(mask: np.ndarray, path: Path, kind: str) -> np.ndarray:
    """A mask of values, which some exports save in all three channels; a real colour mask
    is an error saying what the format's masks hold (``kind``)."""
    if mask.ndim == 3:
        if not (mask == mask[..., :1]).all():
            raise ValueError(f"{path}: a colour mask; {kind}")
        mask = mask[..., 0]
    return mask


def read_label_colors(path: Path) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Classes and colours of a ``label_colors.txt`` as CVAT's Cityscapes 1.0 and CamVid 1.0
    exports write it (``r g b name`` per line, through Datumaro). As Datumaro reads it, the
    class of colour (0, 0, 0) is id 0, and when no line has that colour a ``background``
    class is id 0 (the exporter leaves it out of the file)."""
    classes: list[str] = []
    palette: list[tuple[int, int, int]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        ok = len(parts) >= 4 and all(v.isdigit() and int(v) <= 255 for v in parts[:3])
        if not ok:
            raise ValueError(f"{path}:{number}: {line!r} is not 'r g b name'")
        colour, name = (int(parts[0]), int(parts[1]), int(parts[2])), " ".join(parts[3:])
        add_class(classes, palette, name, colour, f"{path}:{number}")
    if not classes:
        raise ValueError(f"{path}: no classes in it")
    black = palette.index((0, 0, 0)) if (0, 0, 0) in palette else None
    if black is None:
        return ["background", *classes], [(0, 0, 0), *palette]
    order = [black] + [i for i in range(len(classes)) if i != black]
    return [classes[i] for i in order], [palette[i] for i in order]
