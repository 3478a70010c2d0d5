"""Small datasets in each official layout, written from the synthetic generator.

Used by the tests and by ``tools/make_sample_data.py`` so the tools can be tried without
downloading anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import yaml
from pycocotools import mask as mask_utils

from ..io import write_bytes_atomic, write_png
from .coco import COCO_CATEGORIES
from .synthetic import CLASSES, PALETTE, SyntheticSegmentation

FORMATS = ("cityscapes", "coco", "folder")
# Synthetic class → Cityscapes label id: road, car, building, person, vegetation.
CITYSCAPES_IDS = [7, 26, 11, 24, 21]
CITYSCAPES_INSTANCE_IDS = {24, 26}  # classes with instances: id * 1000 + k in instanceIds
EGO_VEHICLE_ID = 1  # ignored in evaluation; painted along the bottom edge
# Synthetic class → COCO category: disc → person, box → car, triangle → dog, star → cup
# (cup is not one of the 20 VOC classes, so the VOC protocol must drop it).
COCO_IDS = [None, 1, 3, 18, 47]


def _scenes(split: str, count: int, size: tuple[int, int], seed: int):
    ds = SyntheticSegmentation(split, count, size, seed)
    for i in range(count):
        yield i, *ds.scene(i)


def write_cityscapes(out: Path, counts: dict[str, int], size, seed: int) -> None:
    cities = {"train": "aachen", "val": "frankfurt", "test": "berlin"}
    lut = np.array(CITYSCAPES_IDS, np.uint8)
    for split, count in counts.items():
        city = cities[split]
        for i, image, mask, instances in _scenes(split, count, size, seed):
            stem = f"{city}_{i // 100:06d}_{i % 100:06d}"
            write_png(out / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", image)
            if split == "test":
                continue
            ids = lut[mask]
            ids[-max(1, size[0] // 16) :, :] = EGO_VEHICLE_ID
            inst = ids.astype(np.uint16)
            for k, (cls, m) in enumerate(instances):
                label = CITYSCAPES_IDS[cls]
                if label in CITYSCAPES_INSTANCE_IDS:
                    inst[m & (ids == label)] = label * 1000 + k
            gt = out / "gtFine" / split / city
            write_png(gt / f"{stem}_gtFine_labelIds.png", ids)
            write_png(gt / f"{stem}_gtFine_instanceIds.png", inst)


def write_coco(out: Path, counts: dict[str, int], size, seed: int, year: int = 2017) -> None:
    categories = [{"id": i, "name": n, "supercategory": "thing"} for i, n in COCO_CATEGORIES]
    for split, count in counts.items():
        images, annotations = [], []
        for i, image, _mask, instances in _scenes(split, count, size, seed):
            image_id = i + 1
            name = f"{image_id:012d}.jpg"
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            assert ok
            write_bytes_atomic(out / f"{split}{year}" / name, jpg.tobytes())
            images.append({"id": image_id, "file_name": name, "height": size[0], "width": size[1]})
            for k, (cls, m) in enumerate(instances):
                ann = {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": COCO_IDS[cls],
                    "area": int(m.sum()),
                    "bbox": _bbox(m),
                }
                if k == 0 and i % 3 == 0:  # a crowd region, as COCO stores them: RLE
                    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                    if i % 2 == 0:
                        ann["segmentation"] = _uncompressed_rle(m)
                    else:
                        ann["segmentation"] = {
                            "size": rle["size"],
                            "counts": rle["counts"].decode(),
                        }
                    ann["iscrowd"] = 1
                else:
                    ann["segmentation"] = _polygons(m)
                    ann["iscrowd"] = 0
                    if not ann["segmentation"]:
                        continue
                annotations.append(ann)
        data = {"images": images, "annotations": annotations, "categories": categories}
        path = out / "annotations" / f"instances_{split}{year}.json"
        write_bytes_atomic(path, json.dumps(data).encode())


def write_folder(out: Path, counts: dict[str, int], size, seed: int) -> None:
    for split, count in counts.items():
        for i, image, mask, _ in _scenes(split, count, size, seed):
            write_png(out / split / "images" / f"{split}_{i:05d}.png", image)
            write_png(out / split / "masks" / f"{split}_{i:05d}.png", mask)
    text = yaml.safe_dump({"classes": CLASSES, "palette": [list(c) for c in PALETTE]})
    write_bytes_atomic(out / "classes.yaml", text.encode())


def write_sample_data(
    fmt: str,
    out: str | Path,
    num_train: int = 8,
    num_val: int = 4,
    size: tuple[int, int] = (128, 256),
    seed: int = 0,
    num_test: int = 0,
) -> Path:
    """Write a small tree in ``fmt``'s official layout under ``out``; returns ``out``."""
    writers = {"cityscapes": write_cityscapes, "coco": write_coco, "folder": write_folder}
    if fmt not in writers:
        raise ValueError(f"unknown sample format {fmt!r}; choose one of {FORMATS}")
    counts = {"train": num_train, "val": num_val}
    if num_test:
        if fmt != "cityscapes":
            raise ValueError("only the cityscapes layout has a test split")
        counts["test"] = num_test
    out = Path(out)
    writers[fmt](out, {k: v for k, v in counts.items() if v > 0}, tuple(size), seed)
    return out


def _bbox(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]  # fmt: skip


def _polygons(m: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def _uncompressed_rle(m: np.ndarray) -> dict:
    # COCO's RLE: column-major run lengths, starting with a run of zeros (possibly empty).
    flat = m.flatten(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return {"size": list(m.shape), "counts": runs}
