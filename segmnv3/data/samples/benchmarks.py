"""Sample trees in the benchmarks' own layouts (Cityscapes, COCO, VOC, ADE20K) and the
plain folder layout, drawn from the synthetic generator."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import yaml
from PIL import Image
from pycocotools import mask as mask_utils

from ...io import write_bytes_atomic, write_png
from ..coco import COCO_CATEGORIES
from ..synthetic import CLASSES, PALETTE, SyntheticSegmentation

# Synthetic class → Cityscapes label id: road, car, building, person, vegetation.
CITYSCAPES_IDS = [7, 26, 11, 24, 21]
CITYSCAPES_INSTANCE_IDS = {24, 26}  # classes with instances: id * 1000 + k in instanceIds
EGO_VEHICLE_ID = 1  # ignored in evaluation; painted along the bottom edge
# Synthetic class → COCO category: disc → person, box → car, triangle → dog, star → cup
# (cup is not one of the 20 VOC classes, so the VOC protocol must drop it).
COCO_IDS = [None, 1, 3, 18, 47]
EXIF_ORIENTATION = 0x0112


def scenes(split: str, count: int, size: tuple[int, int], seed: int):
    """``(i, image, mask, instances)`` of ``count`` synthetic scenes of ``split``."""
    ds = SyntheticSegmentation(split, count, size, seed)
    for i in range(count):
        yield i, *ds.scene(i)


def write_jpeg(path: Path, image: np.ndarray, orientation: int | None = None) -> None:
    """An RGB image as a JPEG file; ``orientation`` adds that EXIF orientation tag, as a phone
    camera writes it (the pixels stay as given: stored, not upright)."""
    if orientation is None:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        write_bytes_atomic(path, data.tobytes())
        return
    buffer, exif = io.BytesIO(), Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(image).save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    write_bytes_atomic(path, buffer.getvalue())


def write_cityscapes(out: Path, counts: dict[str, int], size, seed: int) -> None:
    cities = {"train": "aachen", "val": "frankfurt", "test": "berlin"}
    lut = np.array(CITYSCAPES_IDS, np.uint8)
    for split, count in counts.items():
        city = cities[split]
        for i, image, mask, instances in scenes(split, count, size, seed):
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
        for i, image, _mask, instances in scenes(split, count, size, seed):
            image_id = i + 1
            name = f"{image_id:012d}.jpg"
            write_jpeg(out / f"{split}{year}" / name, image)
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
        for i, image, mask, _ in scenes(split, count, size, seed):
            write_png(out / split / "images" / f"{split}_{i:05d}.png", image)
            write_png(out / split / "masks" / f"{split}_{i:05d}.png", mask)
    text = yaml.safe_dump({"classes": CLASSES, "palette": [list(c) for c in PALETTE]})
    write_bytes_atomic(out / "classes.yaml", text.encode())


def write_voc(out: Path, counts: dict[str, int], size, seed: int) -> None:
    """VOC 2012 as CVAT's Segmentation mask 1.1 writes it: palette PNGs with 255 on the
    object boundaries, ImageSets lists, and a labelmap.txt naming the 5 classes; the first
    val mask is written in RGB colours (CVAT may), boundaries in VOC's (224, 224, 192)."""
    lines = ["# label:color_rgb:parts:actions"]
    lines += [f"{n}:{','.join(map(str, c))}::" for n, c in zip(CLASSES, PALETTE, strict=True)]
    write_bytes_atomic(out / "labelmap.txt", ("\n".join(lines) + "\n").encode())
    flat = [v for c in PALETTE for v in c] + [0] * (3 * (255 - len(PALETTE))) + [224, 224, 192]
    for split, count in counts.items():
        stems = []
        for i, image, mask, _ in scenes(split, count, size, seed):
            stem = f"2007_{split}{i:05d}"
            stems.append(stem)
            write_jpeg(out / "JPEGImages" / f"{stem}.jpg", image)
            edges = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
            ids = np.where(edges, 255, mask).astype(np.uint8)
            target = out / "SegmentationClass" / f"{stem}.png"
            if split == "val" and i == 0:
                rgb = np.array(PALETTE + [(224, 224, 192)], np.uint8)[np.where(ids == 255, 5, ids)]
                write_png(target, rgb)
            else:
                pil = Image.fromarray(ids, mode="P")
                pil.putpalette(flat)
                buffer = io.BytesIO()
                pil.save(buffer, format="PNG")
                write_bytes_atomic(target, buffer.getvalue())
        listing = out / "ImageSets" / "Segmentation" / f"{split}.txt"
        write_bytes_atomic(listing, ("\n".join(stems) + "\n").encode())


ADE20K_IDS = [1, 13, 21, 42, 5]  # synthetic class → ADE20K value: wall, person, car, box, tree


def write_ade20k(out: Path, counts: dict[str, int], size, seed: int) -> None:
    """ADEChallengeData2016: jpg images and single-channel annotations of values 1…150, with
    a band of 0 ("other") along the top."""
    root, lut = out / "ADEChallengeData2016", np.array(ADE20K_IDS, np.uint8)
    for split, count in counts.items():
        folder = {"train": "training", "val": "validation"}[split]
        for i, image, mask, _ in scenes(split, count, size, seed):
            stem = f"ADE_{folder[:5]}_{i + 1:08d}"
            write_jpeg(root / "images" / folder / f"{stem}.jpg", image)
            values = lut[mask]
            values[: max(1, size[0] // 16)] = 0
            write_png(root / "annotations" / folder / f"{stem}.png", values)


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
