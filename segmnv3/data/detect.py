"""``auto``: which layout a folder is in, from the files each format is known by."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# (layout, what it looks for, test on the root folder -> options or None), in the order
# tried: the most specific marks first, the plain images/ + masks/ folders last.
ROBOFLOW_FOLDERS = ("train", "valid", "test")


def _yaml_spec(root: Path) -> dict | None:
    from .ultralytics import find_yaml

    if root.is_file() and root.suffix in (".yaml", ".yml"):
        return {"data": str(root)}
    try:
        return {"data": str(find_yaml(root))}
    except FileNotFoundError:
        return None


def _is_labelme(root: Path) -> dict | None:
    for path in sorted(root.glob("*.json"))[:3] + sorted(root.glob("*/*.json"))[:3]:
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "shapes" in doc and ("imagePath" in doc or "imageData" in doc):
            return {}
    return None


def _has(*patterns: str) -> Callable[[Path], dict | None]:
    return lambda root: {} if any(next(root.glob(p), None) for p in patterns) else None


CHECKS: list[tuple[str, str, Callable[[Path], dict | None]]] = [
    ("ultralytics", "a dataset YAML with names and masks_dir", _yaml_spec),
    ("ade20k", "ADEChallengeData2016/ or images/training/",
     _has("ADEChallengeData2016/images", "images/training", "images/validation")),
    ("cityscapes", "leftImg8bit/ and gtFine/", _has("gtFine/*/")),
    ("coco", "annotations/instances_*.json or <split>/_annotations.coco.json",
     _has("annotations/instances_*.json", "*/_annotations.coco.json")),
    ("roboflow", "<train|valid|test>/_classes.csv", _has("*/_classes.csv")),
    ("voc", "JPEGImages/ and SegmentationClass/ (or VOC2012/, VOCdevkit/VOC2012/)",
     _has("SegmentationClass", "VOC2012/SegmentationClass", "VOCdevkit/VOC2012/SegmentationClass")),
    ("camvid", "label_colors.txt and <split>.txt beside <split>annot/", _has("*annot/")),
    ("labelme", "labelme .json files (in root or its split folders)", _is_labelme),
    ("folder", "images/ and masks/ (in root or its split folders)",
     _has("images/", "*/images/")),
]  # fmt: skip


def detect_layout(root: str | Path) -> tuple[str, dict]:
    """The layout ``root`` is in and the options it needs; an error lists what was looked
    for when it is in none."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"auto dataset: {root} does not exist")
    for name, _, test in CHECKS:
        options = test(root) if root.is_dir() or name == "ultralytics" else None
        if options is not None:
            return name, options
    looked = "; ".join(f"{name}: {what}" for name, what, _ in CHECKS)
    raise FileNotFoundError(f"auto dataset: {root} is in no layout read here (looked for {looked})")


def dataset_splits(cls, root, options: dict) -> list[str]:
    """``cls.splits(root, …)`` with the options it takes."""
    params = inspect.signature(cls.splits).parameters
    return cls.splits(root, **{k: v for k, v in options.items() if k in params})


def describe(name: str, counts: dict[str, int], num_classes: int) -> str:
    """'read as voc: 1,464 train / 1,449 val images, 21 classes'."""
    splits = " / ".join(f"{n:,} {split}" for split, n in counts.items())
    return f"read as {name}: {splits} images, {num_classes} classes"
