import shutil

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers import labels as cs_labels

from segmnv3.data import Cityscapes, build_dataset
from segmnv3.data.cityscapes import CLASSES, ID_TO_TRAIN_ID, PALETTE, TRAIN_ID_TO_ID


def test_lookup_table_matches_the_official_labels():
    official = {label.id: label for label in cs_labels.labels if label.id >= 0}
    for label_id in range(256):
        label = official.get(label_id)
        expected = 255 if label is None or label.ignoreInEval else label.trainId
        assert ID_TO_TRAIN_ID[label_id] == expected, label_id
    train = sorted(
        (label for label in cs_labels.labels if not label.ignoreInEval), key=lambda x: x.trainId
    )
    assert CLASSES == [label.name for label in train]
    assert PALETTE == [tuple(label.color) for label in train]
    assert [TRAIN_ID_TO_ID[i] for i in range(19)] == [label.id for label in train]


def test_items_follow_the_contract(cityscapes_root):
    ds = Cityscapes(cityscapes_root, "val")
    assert len(ds) == 3
    image, mask = ds[0]
    assert image.dtype == np.uint8 and image.shape == (64, 128, 3)
    assert mask.dtype == np.uint8 and mask.shape == (64, 128)
    ids = cv2.imread(str(ds.masks[0]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask, ID_TO_TRAIN_ID[ids])
    assert (mask[-1] == 255).all()  # the ego-vehicle strip (id 1) is ignored
    assert ds.filename(0) == "frankfurt_000000_000000"
    rgb = cv2.cvtColor(cv2.imread(str(ds.images[0])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(image, rgb)


def test_test_split_has_images_and_ignore_masks(cityscapes_root):
    ds = build_dataset("cityscapes", "test", root=cityscapes_root)
    image, mask = ds[1]
    assert image.shape == (64, 128, 3) and (mask == 255).all()


def test_unknown_split(cityscapes_root):
    with pytest.raises(ValueError, match="'dev'"):
        Cityscapes(cityscapes_root, "dev")


def test_missing_label_names_the_file(cityscapes_root, tmp_path):
    root = shutil.copytree(cityscapes_root, tmp_path / "cs")
    victim = sorted((root / "gtFine" / "train").rglob("*_labelIds.png"))[0]
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.name):
        Cityscapes(root, "train")


def test_empty_split_folder(tmp_path):
    (tmp_path / "leftImg8bit" / "train" / "aachen").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no \\*_leftImg8bit.png"):
        Cityscapes(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="leftImg8bit"):
        Cityscapes(tmp_path / "nothing", "train")


def test_truncated_image_and_wrong_size_mask(cityscapes_root, tmp_path):
    root = shutil.copytree(cityscapes_root, tmp_path / "cs")
    ds = Cityscapes(root, "train")
    data = ds.images[0].read_bytes()
    ds.images[0].write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"{ds.images[0].name}.*truncated"):
        ds[0]
    cv2.imwrite(str(ds.masks[1]), np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match=f"{ds.masks[1].name}.*differs"):
        ds[1]
    ds.masks[2].write_text("not a png")
    with pytest.raises(ValueError, match=ds.masks[2].name):
        ds[2]


def test_train_id_files_where_label_ids_are_expected(cityscapes_root, tmp_path):
    root = shutil.copytree(cityscapes_root, tmp_path / "cs")
    ds = Cityscapes(root, "train")
    train_ids = ID_TO_TRAIN_ID[cv2.imread(str(ds.masks[0]), cv2.IMREAD_UNCHANGED)]
    cv2.imwrite(str(ds.masks[0]), train_ids)  # what *_labelTrainIds.png holds
    with pytest.raises(ValueError, match=f"{ds.masks[0].name}.*looks like train ids"):
        ds[0]
