"""Every registered dataset keeps the adapter contract, on a tree in its own layout written
by the sample-data writer. A new layout joins with one line in LAYOUTS."""

from pathlib import Path

import numpy as np
import pytest

from segmnv3.data import DATASETS, SPLIT_NAMES, build_dataset, dataset_splits
from segmnv3.data.samples import write_sample_data

# test id: (dataset name, sample-data format or None for drawn scenes, options, glob of a
# file the first val item reads: deleted to check that its absence is named)
LAYOUTS = {
    "ade20k": ("ade20k", "ade20k", {}, "ADEChallengeData2016/annotations/validation/*.png"),
    "auto": ("auto", "voc", {}, "SegmentationClass/2007_val00001.png"),
    "camvid": ("camvid", "camvid", {}, "valannot/*.png"),
    "cityscapes": ("cityscapes", "cityscapes", {}, "gtFine/val/*/*_gtFine_labelIds.png"),
    "cityscapes-cvat": ("cityscapes", "cvat-cityscapes", {}, "gtFine/val/*_gtFine_labelIds.png"),
    "coco": ("coco", "coco", {}, "val2017/*.jpg"),
    "coco-cvat": ("coco", "cvat-coco", {}, "images/val/*.jpg"),
    "coco-roboflow": ("coco", "roboflow-coco", {}, "valid/*.jpg"),
    "folder": ("folder", "folder", {}, "val/masks/*.png"),
    "labelme": ("labelme", "labelme", {}, "val/val_0001.jpg"),
    "roboflow": ("roboflow", "roboflow", {}, "valid/*_mask.png"),
    "synthetic": ("synthetic", None, {"num_samples": 3, "size": [40, 56]}, None),
    "ultralytics": ("ultralytics", "ultralytics", {}, "masks/val/*.png"),
    "voc": ("voc", "voc", {}, "SegmentationClass/2007_val00001.png"),
}


def test_every_dataset_has_a_line():
    assert sorted({name for name, *_ in LAYOUTS.values()}) == sorted(DATASETS)


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request, tmp_path):
    name, fmt, options, needed = LAYOUTS[request.param]
    root = write_sample_data(fmt, tmp_path / request.param, 3, 2, (48, 64)) if fmt else None
    return name, root, options, needed


def test_items_classes_and_palette(layout):
    name, root, options, _ = layout
    ds = build_dataset(name, "val", root, **options)
    assert len(ds) >= 1
    assert len(ds.classes) == ds.num_classes >= 2
    assert all(isinstance(c, str) and c for c in ds.classes)
    assert len(ds.palette) == ds.num_classes
    assert all(len(c) == 3 and all(0 <= int(v) <= 255 for v in c) for c in ds.palette)
    for i in range(len(ds)):
        image, mask = ds[i]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert mask.dtype == np.uint8 and mask.shape == image.shape[:2]
        values = set(np.unique(mask).tolist())
        assert values <= set(range(ds.num_classes)) | {255}  # 255 = ignore, nothing else
        assert values - {255}  # some labelled pixels


def test_a_missing_file_is_named(layout):
    name, root, options, needed = layout
    if needed is None:
        assert root is None  # drawn scenes read no file
        return
    victim = sorted(Path(root).glob(needed))[0]
    victim.unlink()
    with pytest.raises((FileNotFoundError, ValueError), match=victim.name):
        ds = build_dataset(name, "val", root, **options)
        for i in range(len(ds)):
            ds.load(i)


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(ValueError, match="dataset 'synthetic': unknown option num_sample; valid "
                       "options: kind_weights, num_samples, seed, size"):  # fmt: skip
        build_dataset("synthetic", "val", None, num_sample=3)
    with pytest.raises(ValueError, match="dataset 'folder' needs a root folder"):
        build_dataset("folder", "val", None)


@pytest.mark.parametrize("layout_id", sorted(set(LAYOUTS) - {"auto"}))
def test_splits_are_the_ones_that_build(layout_id, tmp_path):
    """``splits(root)`` names train and val (as the format names them), and each builds."""
    name, fmt, options, _ = LAYOUTS[layout_id]
    root = write_sample_data(fmt, tmp_path, 3, 2, (96, 128)) if fmt else None  # COCO's train
    splits = dataset_splits(DATASETS[name], root, options)
    assert sorted(SPLIT_NAMES[s] for s in splits) == ["train", "val"]
    assert all(len(build_dataset(name, s, root, **options)) >= 1 for s in splits)
