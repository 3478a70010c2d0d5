import numpy as np
import pytest
from PIL import Image

from segmnv3.data import ADE20K, SyntheticSegmentation, VOCSegmentation
from segmnv3.data.samples import ADE20K_IDS, write_sample_data
from segmnv3.data.synthetic import CLASSES
from segmnv3.hub import VOC_CLASSES


@pytest.fixture
def voc(tmp_path):
    return write_sample_data("voc", tmp_path / "VOCdevkit" / "VOC2012", 2, 2, (48, 64))


def test_voc_palette_and_cvat_colour_masks_read_alike(voc):
    ds = VOCSegmentation(voc.parent.parent, "val")  # found under VOCdevkit/VOC2012
    assert ds.classes == CLASSES  # from CVAT's labelmap.txt
    scenes = SyntheticSegmentation("val", 2, (48, 64))
    for i in range(2):  # mask 0 is written in RGB colours, mask 1 as a palette PNG
        _, mask = ds[i]
        truth = scenes.load(i)[1]
        inside = mask != 255
        assert np.array_equal(mask[inside], truth[inside]) and 0.02 < (~inside).mean() < 0.5
    raw = np.array(Image.open(voc / "SegmentationClass" / "2007_val00001.png"))
    assert Image.open(voc / "SegmentationClass" / "2007_val00001.png").mode == "P"
    assert set(np.unique(raw).tolist()) <= set(range(5)) | {255}


def test_voc_without_labelmap_has_the_21_classes_and_errors_are_named(voc):
    (voc / "labelmap.txt").unlink()
    assert VOCSegmentation(voc, "train").classes == VOC_CLASSES
    with pytest.raises(FileNotFoundError, match="no split file .*trainval.txt .*splits there: "
                       "train, val"):  # fmt: skip
        VOCSegmentation(voc, "trainval")
    (voc / "labelmap.txt").write_text("background:0,0,0::\ncat:128,0,0::\ndog:128,0,0::\n")
    with pytest.raises(ValueError, match=r"labelmap.txt:3: colour \(128, 0, 0\) of 'dog' is "
                       "also the colour of 'cat'"):  # fmt: skip
        VOCSegmentation(voc, "train")
    (voc / "labelmap.txt").write_text("background:0,0,0::\ncat;128,0,0\n")
    with pytest.raises(ValueError, match="labelmap.txt:2: 'cat;128,0,0' is not"):
        VOCSegmentation(voc, "train")


def test_ade20k_shifts_ids_and_ignores_other(tmp_path):
    root = write_sample_data("ade20k", tmp_path, 2, 2, (48, 64))
    ds = ADE20K(root, "val")
    assert len(ds.classes) == 150 and ds.classes[12] == "person"
    _, mask = ds[0]
    truth = SyntheticSegmentation("val", 2, (48, 64)).load(0)[1]
    assert (mask[:3] == 255).all()  # the "other" band
    expected = np.array(ADE20K_IDS)[truth[3:]] - 1
    assert np.array_equal(mask[3:], expected)
    assert len(ADE20K(root / "ADEChallengeData2016", "training")) == 2
    with pytest.raises(ValueError, match="ade20k split 'test'; choose one of"):
        ADE20K(root, "test")


def test_roboflow_export_classes_splits_and_errors(tmp_path):
    from segmnv3.data import RoboflowSegmentation

    root = write_sample_data("roboflow", tmp_path, 2, 2, (48, 64))
    ds = RoboflowSegmentation(root, "val")  # Roboflow calls it valid/
    assert ds.classes == CLASSES and len(ds) == 2
    truth = SyntheticSegmentation("val", 2, (48, 64)).load(1)[1]
    assert np.array_equal(ds[1][1], truth)
    assert all(".rf." in p.name for p in ds.images)
    (root / "valid" / "_classes.csv").write_text("0, background\n1, disc\n")
    with pytest.raises(ValueError, match="_classes.csv: the first line must be the header"):
        RoboflowSegmentation(root, "valid")
    (root / "valid" / "_classes.csv").write_text("Pixel Value, Class\n0, background\n2, disc\n")
    with pytest.raises(ValueError, match=r"pixel values \[0, 2\] are not 0…1"):
        RoboflowSegmentation(root, "valid")
    with pytest.raises(ValueError, match="roboflow split 'validation'; choose one of"):
        RoboflowSegmentation(root, "validation")
