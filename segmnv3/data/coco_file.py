"""A COCO annotation file read and checked: every error names the annotation or image id and
the file; polygon parts that cannot paint a pixel are skipped with a logged count."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from pathlib import Path

log = logging.getLogger("segmnv3.data.coco")


def load_json(path: Path) -> tuple[dict, str]:
    """The parsed annotation file and the SHA-256 of its bytes."""
    if not path.is_file():
        raise FileNotFoundError(f"COCO: annotation file not found: {path}")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a COCO instances file (not a JSON object)")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise ValueError(f"{path}: not a COCO instances file (missing {', '.join(missing)})")
    return data, hashlib.sha256(raw).hexdigest()


def classes_of(data: dict, path: Path) -> list[dict]:
    """The file's categories, less those that only group others (Roboflow's project entry:
    the supercategory of the rest, with no annotation of its own)."""
    cats = data["categories"]
    used = {a.get("category_id") for a in data["annotations"]}
    parents = {c.get("supercategory") for c in cats}
    groups = [c for c in cats if c["name"] in parents and c["id"] not in used]
    if groups:
        log.info("%s: categories %s group the others and are not classes", path,
                 [c["name"] for c in groups])  # fmt: skip
    return [c for c in cats if c not in groups]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def field(entry: dict, key: str, path: Path, kind: str = "annotation"):
    if key not in entry:
        raise ValueError(f"{path}: {kind} {entry.get('id')!r} has no {key!r}")
    return entry[key]


def checked_image(info: dict, path: Path) -> dict:
    if not _is_int(info.get("id")):
        raise ValueError(
            f"{path}: image {info.get('file_name', '?')!r} has id {info.get('id')!r}; COCO image "
            "ids are integers"
        )
    for key in ("file_name", "height", "width"):
        value = field(info, key, path, "image")
        if key != "file_name" and (not _is_int(value) or value < 1):
            raise ValueError(f"{path}: image {info['id']} has {key} {value!r}")
    return info


def _polygon_parts(segm: list) -> tuple[list, int]:
    """The parts of a polygon segmentation with at least 3 points, and how many had fewer."""
    kept = [p for p in segm if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
    return kept, len(segm) - len(kept)


def _check_rle_size(segm: dict, info: dict, aid, path) -> None:
    expected = [info["height"], info["width"]]
    if list(segm["size"]) != expected:
        raise ValueError(f"{path}: annotation {aid} is an RLE of size {list(segm['size'])} "
                         f"(height, width) on image {info['id']} of size {expected}")  # fmt: skip


def annotations_by_image(anns, known, cat_to_class, image_ids, path) -> dict[int, list[dict]]:
    """The kept annotations of each image, checked: an error names the annotation and the
    file. Polygon parts with fewer than 3 points cannot paint a pixel: they are skipped, and
    the count is logged."""
    by_image: dict[int, list[dict]] = defaultdict(list)
    dropped_parts = dropped_anns = 0
    for ann in anns:
        aid = ann.get("id")
        if field(ann, "category_id", path) not in known:
            raise ValueError(f"{path}: annotation {aid} has category_id {ann['category_id']}, "
                             "which is not in the file's categories")  # fmt: skip
        image_id = field(ann, "image_id", path)
        if not _is_int(image_id) or image_id not in image_ids:
            raise ValueError(f"{path}: annotation {aid} has image_id {image_id!r}, which is "
                             "not the id of an image in the file")  # fmt: skip
        segm = field(ann, "segmentation", path)
        if isinstance(segm, list):
            kept, dropped = _polygon_parts(segm)
            dropped_parts += dropped
            if not kept:
                dropped_anns += 1
                continue
            ann = {**ann, "segmentation": kept} if dropped else ann
        elif not (isinstance(segm, dict) and "counts" in segm and "size" in segm):
            raise ValueError(f"{path}: annotation {aid} has a segmentation that is neither "
                             "polygons nor RLE ({'counts', 'size'})")  # fmt: skip
        else:
            _check_rle_size(segm, image_ids[image_id], aid, path)
        if ann["category_id"] in cat_to_class:
            by_image[image_id].append(ann)
    if dropped_parts:
        log.warning(
            "%s: skipped %d polygon parts with fewer than 3 points (%d annotations had no other "
            "part and were skipped)", path, dropped_parts, dropped_anns
        )  # fmt: skip
    return by_image
