"""Sample trees as the annotation tools export them: Roboflow (semantic masks and COCO),
labelme, Ultralytics, and CVAT's Cityscapes 1.0 and CamVid 1.0, drawn from the synthetic
generator. Each writes a photo or two with an EXIF orientation, as phones do, labelled the
way that tool labels it (on the upright picture)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import yaml

from ...io import encode_png, write_bytes_atomic, write_png
from ..synthetic import CLASSES, PALETTE
from .benchmarks import _polygons, scenes, write_coco, write_jpeg

ROTATED = 6  # EXIF orientation "turn 90° clockwise to view": stored pixels are the view turned back
SPLIT_FOLDERS = {"train": "train", "val": "valid", "test": "test"}  # Roboflow's names


def _stored(upright: np.ndarray) -> np.ndarray:
    """The stored pixels of a photo whose upright view is ``upright`` (orientation 6)."""
    return np.ascontiguousarray(np.rot90(upright, k=1))


def _photo(path: Path, image: np.ndarray, rotated: bool) -> None:
    """A JPEG of the upright ``image``; ``rotated`` stores it turned, with orientation 6."""
    if rotated:
        write_jpeg(path, _stored(image), ROTATED)
    else:
        write_jpeg(path, image)


def _name(split: str, i: int) -> str:
    return f"scene{i:04d}_jpg.rf.{hashlib.md5(f'{split}{i}'.encode()).hexdigest()}"


def write_roboflow(out: Path, counts: dict[str, int], size, seed: int) -> None:
    """Roboflow's png-mask-semantic export: ``<stem>_jpg.rf.<hash>.jpg`` beside
    ``…_mask.png`` and a ``_classes.csv`` in each split folder (val is ``valid``)."""
    header = "Pixel Value, Class\n" + "".join(f"{i}, {n}\n" for i, n in enumerate(CLASSES))
    for split, count in counts.items():
        folder = out / SPLIT_FOLDERS[split]
        write_bytes_atomic(folder / "_classes.csv", header.encode())
        for i, image, mask, _ in scenes(split, count, size, seed):
            write_jpeg(folder / f"{_name(split, i)}.jpg", image)
            write_png(folder / f"{_name(split, i)}_mask.png", mask)


def write_roboflow_coco(out: Path, counts: dict[str, int], size, seed: int) -> None:
    """Roboflow's COCO export: ``_annotations.coco.json`` beside the images in each split
    folder; category 0 is the project (the others' supercategory), ids count from 0."""
    project = "shapes-demo"
    categories = [{"id": 0, "name": project, "supercategory": "none"}]
    categories += [{"id": k, "name": n, "supercategory": project}
                   for k, n in enumerate(CLASSES[1:], 1)]  # fmt: skip
    for split, count in counts.items():
        folder, images, annotations = out / SPLIT_FOLDERS[split], [], []
        for i, image, _, instances in scenes(split, count, size, seed):
            name = f"{_name(split, i)}.jpg"
            write_jpeg(folder / name, image)
            images.append({"id": i, "file_name": name, "height": size[0], "width": size[1]})
            for cls, m in instances:
                polygons = _polygons(m)
                if polygons:
                    annotations.append({"id": len(annotations), "image_id": i, "category_id": cls,
                                        "segmentation": polygons, "area": int(m.sum()),
                                        "bbox": [0, 0, 0, 0], "iscrowd": 0})  # fmt: skip
        data = {"info": {}, "licenses": [], "categories": categories, "images": images,
                "annotations": annotations}  # fmt: skip
        write_bytes_atomic(folder / "_annotations.coco.json", json.dumps(data).encode())


def _labelme_shapes(mask: np.ndarray, instances) -> list[dict]:
    """Shapes that paint ``mask``: a polygon per visible part, in paint order, with one of
    each other kind labelme saves (a rectangle, a circle, a mask and an ignored line)."""
    shapes = []
    for cls, m in instances:
        for poly in _polygons(m):
            points = np.asarray(poly).reshape(-1, 2).tolist()
            shapes.append({"label": CLASSES[cls], "points": points, "group_id": None,
                           "shape_type": "polygon", "flags": {}, "description": ""})  # fmt: skip
    h, w = mask.shape
    shapes.append({"label": "box", "points": [[1, 1], [w // 6, h // 6]], "shape_type": "rectangle"})
    shapes.append({"label": "disc", "points": [[w - 8, h - 8], [w - 4, h - 8]],
                   "shape_type": "circle"})  # fmt: skip
    patch = np.zeros((6, 5), np.uint8)
    patch[1:5, 1:4] = 1
    shapes.append(
        {
            "label": "__ignore__",
            "points": [[w // 2, 0], [w // 2 + 4, 5]],
            "shape_type": "mask",
            "mask": base64.b64encode(encode_png(patch)).decode(),
        }
    )
    shapes.append({"label": "star", "points": [[0, h - 1], [w - 1, h - 1]], "shape_type": "line"})
    return shapes


def write_labelme(out: Path, counts: dict[str, int], size, seed: int) -> None:
    """labelme's own files: ``<split>/<stem>.json`` beside ``<stem>.jpg``, and a
    ``labels.txt`` as labelme2voc takes it. The first image of each split embeds its pixels
    (``imageData``); the second is a phone photo stored turned, with orientation 6, whose
    shapes are on the upright view (labelme turns photos on opening)."""
    labels = ["__ignore__", "_background_", *CLASSES[1:]]
    write_bytes_atomic(out / "labels.txt", ("\n".join(labels) + "\n").encode())
    for split, count in counts.items():
        for i, image, mask, instances in scenes(split, count, size, seed):
            stem = f"{split}_{i:04d}"
            _photo(out / split / f"{stem}.jpg", image, rotated=i == 1)
            data = (out / split / f"{stem}.jpg").read_bytes()
            doc = {"version": "5.5.0", "flags": {}, "shapes": _labelme_shapes(mask, instances),
                   "imagePath": f"{stem}.jpg", "imageData": None,
                   "imageHeight": size[0], "imageWidth": size[1]}  # fmt: skip
            if i == 0:
                doc["imageData"] = base64.b64encode(data).decode()
            write_bytes_atomic(out / split / f"{stem}.json", json.dumps(doc, indent=2).encode())


def write_ultralytics(out: Path, counts: dict[str, int], size, seed: int) -> None:
    """Ultralytics' semantic layout: ``data.yaml`` (path, train, val, names, masks_dir),
    ``images/<split>/`` and ``masks/<split>/`` single-channel PNGs with 255 on boundaries."""
    spec = {"path": ".", "names": dict(enumerate(CLASSES)), "masks_dir": "masks"}
    for split, count in counts.items():
        spec[split] = f"images/{split}"
        for i, image, mask, _ in scenes(split, count, size, seed):
            edges = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
            _photo(out / "images" / split / f"{split}_{i:04d}.jpg", image, rotated=i == 1)
            write_png(out / "masks" / split / f"{split}_{i:04d}.png", np.where(edges, 255, mask))
    write_bytes_atomic(out / "data.yaml", yaml.safe_dump(spec, sort_keys=False).encode())


def _label_colors(out: Path) -> None:
    """``label_colors.txt`` as Datumaro writes it for CVAT: ``r g b name``, background left
    out (it is the (0, 0, 0) of unlabelled pixels)."""
    lines = [f"{r} {g} {b} {n}" for n, (r, g, b) in zip(CLASSES[1:], PALETTE[1:], strict=True)]
    write_bytes_atomic(out / "label_colors.txt", ("\n".join(lines) + "\n").encode())


def write_cvat_cityscapes(out: Path, counts: dict[str, int], size, seed: int) -> None:
    """CVAT's Cityscapes 1.0 export: images as uploaded in ``leftImg8bit/<subset>/``, class
    indices in ``gtFine/<subset>/*_gtFine_labelIds.png`` (with the colour and instance PNGs),
    ``label_colors.txt``; the last image of each subset was never annotated (no masks)."""
    _label_colors(out)
    colours = np.array(PALETTE, np.uint8)
    for split, count in counts.items():
        for i, image, mask, _ in scenes(split, count + 1, size, seed):
            stem = f"photo_{i:04d}"
            _photo(out / "leftImg8bit" / split / f"{stem}_leftImg8bit.jpg", image, i == 1)
            if i == count:
                continue
            gt = out / "gtFine" / split
            write_png(gt / f"{stem}_gtFine_labelIds.png", mask)
            write_png(gt / f"{stem}_gtFine_color.png", colours[mask])
            write_png(gt / f"{stem}_gtFine_instanceIds.png", mask.astype(np.uint16))


def write_camvid(out: Path, counts: dict[str, int], size, seed: int) -> None:
    """CVAT's CamVid 1.0 export: ``<subset>/`` images, ``<subset>annot/`` colour masks,
    ``<subset>.txt`` ("/<subset>/<name>.jpg <subset>annot/<name>.png" lines) and
    ``label_colors.txt``."""
    _label_colors(out)
    colours = np.array(PALETTE, np.uint8)
    for split, count in counts.items():
        lines = []
        for i, image, mask, _ in scenes(split, count, size, seed):
            stem = f"frame {i:04d}" if i == 2 else f"frame_{i:04d}"  # a name with a space
            _photo(out / split / f"{stem}.jpg", image, rotated=i == 1)
            write_png(out / f"{split}annot" / f"{stem}.png", colours[mask])
            pair = [f"/{split}/{stem}.jpg", f"{split}annot/{stem}.png"]
            lines.append(" ".join(f'"{p}"' for p in pair) if " " in stem else " ".join(pair))
        write_bytes_atomic(out / f"{split}.txt", ("\n".join(lines) + "\n").encode())


def write_cvat_coco(out: Path, counts: dict[str, int], size, seed: int) -> None:
    """CVAT's COCO 1.0 export (Datumaro's coco_instances): ``annotations/instances_<subset>
    .json`` and ``images/<subset>/``, no year in the names."""
    write_coco(out, counts, size, seed)
    for split in counts:
        (out / "images").mkdir(exist_ok=True)
        (out / f"{split}2017").rename(out / "images" / split)
        ann = out / "annotations"
        (ann / f"instances_{split}2017.json").rename(ann / f"instances_{split}.json")
