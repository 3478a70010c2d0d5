"""Small datasets in each layout segmnv3 reads, drawn from the synthetic generator: the
benchmarks' official layouts and the annotation tools' exports. Used by the tests and by
``tools/make_sample_data.py``, so every layout can be tried without downloading anything.
"""

from __future__ import annotations

from pathlib import Path

from .benchmarks import (
    ADE20K_IDS,
    CITYSCAPES_IDS,
    COCO_IDS,
    scenes,
    write_ade20k,
    write_cityscapes,
    write_coco,
    write_folder,
    write_jpeg,
    write_voc,
)
from .exports import (
    write_camvid,
    write_cvat_cityscapes,
    write_cvat_coco,
    write_labelme,
    write_roboflow,
    write_roboflow_coco,
    write_ultralytics,
)

WRITERS = {
    "ade20k": write_ade20k,
    "camvid": write_camvid,
    "cityscapes": write_cityscapes,
    "coco": write_coco,
    "cvat-cityscapes": write_cvat_cityscapes,
    "cvat-coco": write_cvat_coco,
    "folder": write_folder,
    "labelme": write_labelme,
    "roboflow": write_roboflow,
    "roboflow-coco": write_roboflow_coco,
    "ultralytics": write_ultralytics,
    "voc": write_voc,
}
FORMATS = tuple(WRITERS)


def write_sample_data(
    fmt: str,
    out: str | Path,
    num_train: int = 8,
    num_val: int = 4,
    size: tuple[int, int] = (128, 256),
    seed: int = 0,
    num_test: int = 0,
) -> Path:
    """Write a small tree in ``fmt``'s layout under ``out``; returns ``out``."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown sample format {fmt!r}; choose one of {FORMATS}")
    counts = {"train": num_train, "val": num_val}
    if num_test:
        if fmt != "cityscapes":
            raise ValueError("only the cityscapes layout has a test split")
        counts["test"] = num_test
    out = Path(out)
    WRITERS[fmt](out, {k: v for k, v in counts.items() if v > 0}, tuple(size), seed)
    return out


__all__ = ["ADE20K_IDS", "CITYSCAPES_IDS", "COCO_IDS", "FORMATS", "WRITERS", "scenes",
           "write_jpeg", "write_sample_data"]  # fmt: skip
