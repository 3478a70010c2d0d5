import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from segmnv3.data import COCOSegmentation
from segmnv3.data.coco import VOC_CLASSES


def _square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _write(root, anns, images=None, split="val"):
    (root / f"{split}2017").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    images = images or [{"id": 1, "file_name": "a.jpg", "height": 40, "width": 60}]
    for info in images:
        img = np.full((info["height"], info["width"], 3), 128, np.uint8)
        cv2.imwrite(str(root / f"{split}2017" / info["file_name"]), img)
    cats = [{"id": i, "name": n} for i, n in [(1, "person"), (3, "car"), (18, "dog"), (47, "cup")]]
    for i, ann in enumerate(anns):
        ann.setdefault("id", i + 1)
        ann.setdefault("image_id", 1)
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", 100)
    data = {"images": images, "annotations": anns, "categories": cats}
    (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(data))
    return root


def _rle(m, compressed):
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    if compressed:
        return {"size": rle["size"], "counts": rle["counts"].decode()}
    flat = m.flatten(order="F")
    runs, value, run = [], 0, 0
    for v in flat:
        if v != value:
            runs.append(run)
            value, run = v, 0
        run += 1
    runs.append(run)
    return {"size": list(m.shape), "counts": runs}


def test_voc_semantics_overlap_crowd_and_dropped_categories(tmp_path):
    crowd = np.zeros((40, 60), bool)
    crowd[30:38, 40:58] = True
    crowd2 = np.zeros((40, 60), bool)
    crowd2[0:5, 50:60] = True
    anns = [
        {"category_id": 1, "segmentation": _square(0, 0, 20, 20)},  # person → 15
        {"category_id": 3, "segmentation": _square(10, 10, 30, 30)},  # car → 7, overlaps person
        {"category_id": 47, "segmentation": _square(35, 0, 45, 10)},  # cup: not VOC → 0
        {"category_id": 18, "segmentation": _square(40, 5, 50, 15)},  # dog → 12, under the cup
        {"category_id": 18, "segmentation": _rle(crowd, False), "iscrowd": 1},
        {"category_id": 1, "segmentation": _rle(crowd2, True), "iscrowd": 1},
    ]
    ds = COCOSegmentation(_write(tmp_path, anns), "val")
    assert ds.classes == VOC_CLASSES and ds.num_classes == 21
    _, mask = ds[0]
    assert mask[5, 5] == 15 and mask[25, 25] == 7
    assert mask[15, 15] == 255  # person ∩ car
    assert mask[2, 37] == 0  # cup only
    assert mask[8, 45] == 12  # cup ∩ dog: the cup is dropped, so no overlap
    assert mask[34, 50] == 12 and mask[2, 55] == 15  # crowd, uncompressed and compressed


def test_all_categories(tmp_path):
    anns = [{"category_id": 47, "segmentation": _square(0, 0, 10, 10)}]
    ds = COCOSegmentation(_write(tmp_path, anns), "val", categories="all")
    assert ds.classes == ["background", "person", "car", "dog", "cup"]
    assert ds[0][1][5, 5] == 4


def test_train_area_filter(tmp_path):
    images = [
        {"id": 1, "file_name": "a.jpg", "height": 40, "width": 60},
        {"id": 2, "file_name": "b.jpg", "height": 40, "width": 60},
        {"id": 3, "file_name": "c.jpg", "height": 40, "width": 60},
    ]
    anns = [
        {"image_id": 1, "category_id": 1, "segmentation": _square(0, 0, 9, 9), "area": 1000},
        {"image_id": 2, "category_id": 1, "segmentation": _square(0, 0, 9, 9), "area": 600},
        {"image_id": 2, "category_id": 3, "segmentation": _square(0, 0, 9, 9), "area": 401},
        {"image_id": 3, "category_id": 47, "segmentation": _square(0, 0, 9, 9), "area": 5000},
    ]
    _write(tmp_path, anns, images, split="train")
    train = COCOSegmentation(tmp_path, "train")
    assert [info["id"] for info, _ in train.images] == [2]  # 1000 is not > 1000; cup is dropped
    _write(tmp_path, anns, images, split="val")
    assert len(COCOSegmentation(tmp_path, "val")) == 3


def test_sample_tree_and_cache(coco_root, tmp_path):
    plain = COCOSegmentation(coco_root, "val")
    cached = COCOSegmentation(coco_root, "val", cache_dir=tmp_path / "cache")
    for i in range(len(plain)):
        a, b = plain[i], cached[i]  # first pass writes the cache
        assert np.array_equal(a[1], b[1]) and np.array_equal(a[1], cached[i][1])
    assert len(list((tmp_path / "cache").rglob("*.png"))) == len(plain)
    labels = np.unique(np.concatenate([plain[i][1].ravel() for i in range(len(plain))]))
    assert set(labels.tolist()) <= {0, 7, 12, 15, 255}


def test_bad_annotation_files(tmp_path):
    root = _write(tmp_path, [{"category_id": 1, "segmentation": _square(0, 0, 5, 5)}])
    path = root / "annotations" / "instances_val2017.json"
    path.write_text("{ not json")
    with pytest.raises(ValueError, match="instances_val2017.json.*not valid JSON"):
        COCOSegmentation(root, "val")
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="missing annotations, categories"):
        COCOSegmentation(root, "val")
    _write(tmp_path, [{"category_id": 999, "segmentation": _square(0, 0, 5, 5)}])
    with pytest.raises(ValueError, match="category_id 999"):
        COCOSegmentation(root, "val")
    with pytest.raises(FileNotFoundError, match="train2017"):
        COCOSegmentation(root, "train")


def test_missing_or_truncated_image(tmp_path):
    root = _write(tmp_path, [{"category_id": 1, "segmentation": _square(0, 0, 5, 5)}])
    img = root / "val2017" / "a.jpg"
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="a.jpg.*truncated"):
        COCOSegmentation(root, "val")[0]
    img.unlink()
    with pytest.raises(FileNotFoundError, match="a.jpg"):
        COCOSegmentation(root, "val")[0]


@pytest.mark.parametrize(
    ("anns", "images", "message"),
    [
        ([{"category_id": 1}], None, "annotation 1 has no 'segmentation'"),
        ([{"category_id": 1, "segmentation": _square(1, 1, 9, 9)[0][0]}], None,
         "annotation 1 has a segmentation that is neither"),
        ([{"category_id": 1, "image_id": "1", "segmentation": _square(1, 1, 9, 9)}], None,
         "annotation 1 has image_id '1'"),
        ([{"category_id": 1, "image_id": 7, "segmentation": _square(1, 1, 9, 9)}], None,
         "annotation 1 has image_id 7"),
        ([], [{"id": "1", "file_name": "a.jpg", "height": 40, "width": 60}], "has id '1'"),
        ([], [{"id": 1, "file_name": "a.jpg", "width": 60}], "image 1 has no 'height'"),
    ],
)  # fmt: skip
def test_bad_annotations_name_the_id_and_file(tmp_path, anns, images, message):
    if images and "height" not in images[0]:
        (tmp_path / "val2017").mkdir(parents=True)
        (tmp_path / "annotations").mkdir()
        data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "p"}]}
        (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    else:
        _write(tmp_path, anns, images)
    with pytest.raises(ValueError, match=f"instances_val2017.json: .*{message}"):
        COCOSegmentation(tmp_path, "val")


def test_missing_area_in_train_and_degenerate_polygons(tmp_path, caplog):
    anns = [{"category_id": 1, "segmentation": _square(0, 0, 30, 30)}]
    _write(tmp_path, anns, split="train")
    path = tmp_path / "annotations" / "instances_train2017.json"
    data = json.loads(path.read_text())
    del data["annotations"][0]["area"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="annotation 1 has no 'area'"):
        COCOSegmentation(tmp_path, "train")
    # Empty and 2-point polygon parts paint nothing: skipped and counted.
    anns = [{"category_id": 1, "segmentation": [[], [1, 1, 5, 5], *_square(2, 2, 9, 9)]},
            {"category_id": 18, "segmentation": [[3, 3, 4, 4]]}]  # fmt: skip
    _write(tmp_path, anns)
    with caplog.at_level("WARNING"):
        ds = COCOSegmentation(tmp_path, "val")
    assert "skipped 3 polygon parts" in caplog.text and "1 annotations" in caplog.text
    mask = ds[0][1]
    assert (mask == VOC_CLASSES.index("person")).sum() > 0 and mask.max() < 255


def test_cache_notices_a_changed_annotation_file(tmp_path):
    _write(tmp_path, [{"category_id": 1, "segmentation": _square(0, 0, 9, 9)}])
    first = COCOSegmentation(tmp_path, "val", cache_dir=tmp_path / "cache")[0][1]
    _write(tmp_path, [{"category_id": 18, "segmentation": _square(0, 0, 29, 29)}])
    second = COCOSegmentation(tmp_path, "val", cache_dir=tmp_path / "cache")[0][1]
    assert (first == VOC_CLASSES.index("person")).any() and not (second == 15).any()
    assert (second == VOC_CLASSES.index("dog")).sum() > (first > 0).sum()


def test_an_rle_of_another_size_names_the_file_and_annotation(tmp_path):
    other = np.zeros((30, 60), bool)
    other[0:5, 0:5] = True
    anns = [{"id": 77, "category_id": 1, "segmentation": _rle(other, True), "iscrowd": 1}]
    root = _write(tmp_path, anns)
    expected = (r"instances_val2017.json: annotation 77 is an RLE of size \[30, 60\] "
                r"\(height, width\) on image 1 of size \[40, 60\]")  # fmt: skip
    with pytest.raises(ValueError, match=expected):
        COCOSegmentation(root, "val")
