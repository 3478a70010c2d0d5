"""The annotation tools' exports: labelme, Ultralytics, CVAT's Cityscapes and CamVid,
Roboflow's COCO, COCO at any path, EXIF-turned photos and ``auto``."""

import base64
import json
import logging

import cv2
import numpy as np
import pytest
import yaml

from segmnv3.data import build_dataset, detect_layout
from segmnv3.data.base import read_image_like, read_label_colors
from segmnv3.data.samples import scenes, write_jpeg, write_sample_data
from segmnv3.io import encode_png, read_image, write_png


def _labelme(folder, name, shapes, size=(20, 30), image=None, embed=False):
    image = np.full((*size, 3), 90, np.uint8) if image is None else image
    write_png(folder / f"{name}.png", image)
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": f"{name}.png",
           "imageData": None, "imageHeight": size[0], "imageWidth": size[1]}  # fmt: skip
    if embed:
        doc["imageData"] = base64.b64encode((folder / f"{name}.png").read_bytes()).decode()
        (folder / f"{name}.png").unlink()
    (folder / f"{name}.json").write_text(json.dumps(doc))


def _shape(label, points, kind="polygon", **extra):
    return {"label": label, "points": points, "shape_type": kind, **extra}


def test_labelme_paints_shapes_in_order_with_ignore_and_background(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
    patch = np.zeros((3, 4), np.uint8)
    patch[1, :] = 1
    shapes = [
        _shape("road", [[0, 10], [29, 10], [29, 19], [0, 19]]),  # bottom half
        _shape("car", [[2, 12], [8, 16]], "rectangle"),  # over the road
        _shape("car", [[20, 5], [22, 5]], "circle"),
        _shape(
            "__ignore__",
            [[10, 0], [13, 2]],
            "mask",
            mask=base64.b64encode(encode_png(patch)).decode(),
        ),  # fmt: skip
        _shape("car", [[0, 0], [29, 0]], "line"),  # marks no region
        _shape("road", [[15, 15]], "point"),
    ]
    _labelme(tmp_path / "val", "a", shapes)
    _labelme(tmp_path / "train", "b", shapes, embed=True)
    ds = build_dataset("labelme", "val", tmp_path)
    assert ds.classes == ["_background_", "car", "road"]  # from the shapes, sorted
    _, mask = ds[0]
    assert mask[5, 5] == 0 and mask[18, 25] == 2 and mask[14, 5] == 1  # rectangle over road
    assert mask[12, 2] == mask[16, 8] == 1 and mask[11, 1] == 2  # edges included, as PIL does
    assert mask[5, 20] == mask[5, 18] == 1 and mask[5, 17] == 0  # radius 2
    assert (mask[1, 10:14] == 255).all() and mask[0, 10] == mask[2, 10] == 0
    assert (mask[0, 15:] == 0).all()  # the line painted nothing
    image_b, mask_b = build_dataset("labelme", "train", tmp_path)[0]  # from imageData
    assert (mask_b == mask).all() and (image_b == 90).all()
    labels = tmp_path / "labels.txt"
    labels.write_text("__ignore__\n_background_\nroad\ncar\ntruck\n")
    assert build_dataset("labelme", "val", tmp_path).classes == [
        "_background_", "road", "car", "truck"]  # fmt: skip
    assert build_dataset("labelme", "val", tmp_path)[0][1][14, 5] == 2
    with pytest.raises(ValueError, match=r"a.json: shape 0 has label 'road', which is not a "):
        build_dataset("labelme", "val", tmp_path, labels=["car"])


@pytest.mark.parametrize("shape, message", [
    (_shape("car", [[0, 0], [5, 5]], "ellipse"), r"shape 0: unknown shape_type 'ellipse'"),
    (_shape("car", [[0, 0], [40, 5], [0, 9]]), r"point \(40, 5\) is outside the 30×20 image"),
    (_shape("car", [[0, 0], [5, 5]]), r"a polygon needs at least 3 points, has 2"),
    (_shape("car", [[0, 0], [5, 5], [1, 1]], "rectangle"), r"a rectangle needs 2 points"),
])  # fmt: skip
def test_labelme_bad_shapes_are_named(tmp_path, shape, message):
    _labelme(tmp_path, "bad", [shape])
    ds = build_dataset("labelme", "train", tmp_path, labels=["car"], val_fraction=0.5)
    with pytest.raises(ValueError, match=f"bad.json: {message}" if "shape 0" in message
                       else message):  # fmt: skip
        ds.load(0)


def test_labelme_without_split_folders_splits_by_name_and_checks_sizes(tmp_path):
    for i in range(10):
        _labelme(tmp_path, f"im{i}", [_shape("cat", [[1, 1], [9, 1], [9, 9]])])
    train = build_dataset("labelme", "train", tmp_path)
    val = build_dataset("labelme", "val", tmp_path)
    names = {train.filename(i) for i in range(len(train))}
    assert len(val) == 2 and len(train) == 8
    assert names.isdisjoint(val.filename(i) for i in range(len(val)))
    doc = json.loads((tmp_path / "im3.json").read_text())
    doc["imageHeight"] = 21
    (tmp_path / "im3.json").write_text(json.dumps(doc))
    ds = next(d for d in (train, val) if "im3" in [d.filename(i) for i in range(len(d))])
    with pytest.raises(ValueError, match=r"im3.json: says the image is 30×21 but it is 30×20"):
        ds.load([ds.filename(i) for i in range(len(ds))].index("im3"))
    (tmp_path / "notes.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match=r"notes.json: not a labelme file"):
        build_dataset("labelme", "train", tmp_path)


def test_exif_turned_photos_are_read_as_their_masks_were_drawn(tmp_path):
    """labelme shapes and CVAT/Ultralytics masks are on the upright photo; a mask of the
    stored size keeps the stored pixels."""
    upright = np.zeros((20, 30, 3), np.uint8)
    upright[:5] = 255  # a white band along the top of the upright view
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # 30×20 as the camera wrote it
    write_jpeg(tmp_path / "p.jpg", stored, orientation=6)
    assert read_image(tmp_path / "p.jpg").shape == (20, 30, 3)
    got = read_image_like(tmp_path / "p.jpg", (20, 30))
    assert got.shape == (20, 30, 3) and got[:5].mean() > 240 and got[6:].mean() < 15
    assert read_image_like(tmp_path / "p.jpg", (30, 20)).shape == (30, 20, 3)
    root = write_sample_data("labelme", tmp_path / "lm", 2, 2, (24, 32))
    rotated = read_image(root / "val" / "val_0001.jpg", exif=False)
    assert rotated.shape == (32, 24, 3)  # stored turned; shapes are on the upright 24×32
    image, mask = build_dataset("labelme", "val", root)[1]
    assert image.shape[:2] == mask.shape == (24, 32)
    scene = list(scenes("val", 2, (24, 32), 0))[1][1]
    assert np.abs(image.astype(int) - scene).mean() < 25  # upright, not transposed


def test_cvat_cityscapes_export(tmp_path, caplog):
    root = write_sample_data("cvat-cityscapes", tmp_path, 3, 2, (24, 32))
    assert "0 0 0" not in (root / "label_colors.txt").read_text()  # background left out
    with caplog.at_level(logging.WARNING):
        ds = build_dataset("cityscapes", "val", root)
    assert "skipped 1 image(s) without a *_gtFine_labelIds.png" in caplog.text
    assert ds.classes == ["background", "disc", "box", "triangle", "star"] and len(ds) == 2
    for i, (_, image, mask, _) in enumerate(scenes("val", 2, (24, 32), 0)):
        got_image, got = ds[i]
        assert (got == mask).all() and got_image.shape == image.shape
    with pytest.raises(FileNotFoundError, match=r"splits there: train, val"):
        build_dataset("cityscapes", "default", root)
    (root / "label_colors.txt").write_text("1 2 3 a\n1 2 3 b\n")
    with pytest.raises(ValueError, match=r"label_colors.txt:2: colour \(1, 2, 3\) of 'b' is "
                       r"also the colour of 'a'"):  # fmt: skip
        build_dataset("cityscapes", "val", root)


def test_label_colors_background_comes_first(tmp_path):
    path = tmp_path / "label_colors.txt"
    path.write_text("# r g b name\n10 20 30 traffic sign\n0 0 0 Void\n")
    assert read_label_colors(path) == (["Void", "traffic sign"], [(0, 0, 0), (10, 20, 30)])
    path.write_text("10 20 30\n")
    with pytest.raises(ValueError, match=r"label_colors.txt:1: '10 20 30' is not 'r g b name'"):
        read_label_colors(path)


def test_camvid_export(tmp_path):
    root = write_sample_data("camvid", tmp_path, 3, 3, (24, 32))
    ds = build_dataset("camvid", "val", root)
    assert ds.filename(2) == "frame 0002"  # a quoted name with a space
    for i, (_, _, mask, _) in enumerate(scenes("val", 3, (24, 32), 0)):
        assert (ds[i][1] == mask).all()
    with pytest.raises(FileNotFoundError, match=r"no split file .*test.txt \(splits there: "
                       r"train, val\)"):  # fmt: skip
        build_dataset("camvid", "test", root)
    colour = cv2.imread(str(root / "valannot" / "frame_0000.png"))
    colour[0, 0] = (1, 2, 3)
    cv2.imwrite(str(root / "valannot" / "frame_0000.png"), colour)
    with pytest.raises(ValueError, match=r"frame_0000.png: colour \(3, 2, 1\) at \(x=0, y=0\)"):
        ds.load(0)
    (root / "label_colors.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"no .*label_colors.txt \(CVAT's CamVid"):
        build_dataset("camvid", "val", root)


def test_ultralytics_yaml(tmp_path):
    root = write_sample_data("ultralytics", tmp_path, 3, 2, (24, 32))
    ds = build_dataset("ultralytics", "val", None, data=str(root / "data.yaml"))
    assert ds.classes == ["background", "disc", "box", "triangle", "star"] and len(ds) == 2
    for i, (_, _, mask, _) in enumerate(scenes("val", 2, (24, 32), 0)):
        got = ds[i][1]
        assert ((got == mask) | (got == 255)).all() and (got == 255).any()
    assert len(build_dataset("ultralytics", "valid", root)) == 2  # the one YAML in root
    spec = yaml.safe_load((root / "data.yaml").read_text())
    (root / "val.txt").write_text("./images/val/val_0001.jpg\n")
    spec.update(val="val.txt", names=list(spec["names"].values()))
    (root / "data.yaml").write_text(yaml.safe_dump(spec))
    assert build_dataset("ultralytics", "val", root).filename(0) == "val_0001"
    del spec["names"]
    (root / "data.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match=r"data.yaml: no 'names'"):
        build_dataset("ultralytics", "val", None, data=root / "data.yaml")
    spec.update(names=["a", "b"])
    del spec["masks_dir"]
    (root / "data.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match=r"no 'masks_dir'; segmnv3 reads Ultralytics' PNG-mask"):
        build_dataset("ultralytics", "val", None, data=root / "data.yaml")


def test_coco_at_any_path_and_roboflow_coco(tmp_path):
    root = write_sample_data("roboflow-coco", tmp_path / "rf", 3, 2, (48, 64))
    ds = build_dataset("coco", "val", root)  # finds valid/_annotations.coco.json
    assert ds.classes == ["background", "disc", "box", "triangle", "star"]  # project dropped
    for i, (_, _, mask, _) in enumerate(scenes("val", 2, (48, 64), 0)):
        assert (ds[i][1] == mask).mean() > 0.9  # polygons traced from the scene's shapes
    first = ds[1][1]
    moved = tmp_path / "elsewhere"
    (root / "valid").rename(moved)
    ds2 = build_dataset("coco", "val", None, annotations=moved / "_annotations.coco.json",
                        images=moved)  # fmt: skip
    assert len(ds2) == 2 and (ds2[1][1] == first).all()
    with pytest.raises(FileNotFoundError, match="no image folder"):
        build_dataset("coco", "val", None, annotations=moved / "_annotations.coco.json",
                      images=tmp_path / "nowhere")  # fmt: skip


@pytest.mark.parametrize("fmt, name", [
    ("voc", "voc"), ("ade20k", "ade20k"), ("cityscapes", "cityscapes"), ("coco", "coco"),
    ("roboflow", "roboflow"), ("roboflow-coco", "coco"), ("labelme", "labelme"),
    ("ultralytics", "ultralytics"), ("cvat-cityscapes", "cityscapes"), ("camvid", "camvid"),
    ("cvat-coco", "coco"),
    ("folder", "folder"),
])  # fmt: skip
def test_auto_detects_each_layout(tmp_path, fmt, name, caplog):
    root = write_sample_data(fmt, tmp_path, 3, 2, (96, 128))
    assert detect_layout(root)[0] == name
    with caplog.at_level(logging.INFO, logger="segmnv3.data"):
        ds = build_dataset("auto", "val", root)
    assert f"read as {name}: " in caplog.text and f"{ds.num_classes} classes" in caplog.text
    assert "3 train" in caplog.text or "3 training" in caplog.text or name == "coco"


def test_auto_lists_what_it_looked_for(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(
        FileNotFoundError,
        match=r"is in no layout read here \(looked for "
        r"ultralytics: .*; voc: JPEGImages/.*; folder: images/ and masks/",
    ):
        build_dataset("auto", "train", tmp_path)
