import cv2
import numpy as np
import pytest

from segmnv3.data import FolderSegmentation, build_dataset
from segmnv3.data.synthetic import CLASSES, PALETTE


def _tree(root, masks):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, m in enumerate(masks):
        cv2.imwrite(str(root / "images" / f"im{i}.png"), np.zeros((*m.shape[:2], 3), np.uint8))
        cv2.imwrite(str(root / "masks" / f"im{i}.png"), m)
    return root


def test_sample_tree_with_classes_file(folder_root):
    ds = build_dataset("folder", "train", root=folder_root)
    assert ds.classes == CLASSES and ds.palette == PALETTE and len(ds) == 3
    image, mask = ds[0]
    assert image.shape == (48, 64, 3) and mask.shape == (48, 64) and mask.max() < 5


def test_colour_masks_map_through_the_palette(tmp_path):
    ids = np.array([[0, 1], [2, 1]], np.uint8)
    palette = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]
    rgb = np.array(palette, np.uint8)[ids]
    _tree(tmp_path, [cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)])
    ds = FolderSegmentation(tmp_path, classes=["a", "b", "c"], palette=palette)
    assert np.array_equal(ds[0][1], ids)
    with pytest.raises(ValueError, match="no palette"):
        FolderSegmentation(tmp_path, classes=["a", "b", "c"])[0]
    with pytest.raises(ValueError, match=r"im0.png: colour \(0, 0, 255\)"):
        FolderSegmentation(tmp_path, classes=["a", "b"], palette=palette[:2])[0]


def test_ids_out_of_range_and_ignore(tmp_path):
    _tree(tmp_path, [np.array([[0, 255], [1, 1]], np.uint8), np.array([[0, 7]], np.uint8)])
    ds = FolderSegmentation(tmp_path, classes=["a", "b"])
    assert ds[0][1][0, 1] == 255
    with pytest.raises(ValueError, match=r"im1.png: class ids \[7\]"):
        ds[1]


def test_missing_mask_and_empty_folder(tmp_path):
    _tree(tmp_path, [np.zeros((4, 4), np.uint8)])
    (tmp_path / "masks" / "im0.png").unlink()
    with pytest.raises(FileNotFoundError, match="im0.png"):
        FolderSegmentation(tmp_path, classes=["a"])
    (tmp_path / "images" / "im0.png").unlink()
    with pytest.raises(FileNotFoundError, match="no images"):
        FolderSegmentation(tmp_path, classes=["a"])


def test_classes_required_and_yaml_errors(tmp_path):
    _tree(tmp_path, [np.zeros((4, 4), np.uint8)])
    with pytest.raises(ValueError, match="classes.yaml"):
        FolderSegmentation(tmp_path)
    (tmp_path / "classes.yaml").write_text("classes: [a, b]\ncolours: []\n")
    with pytest.raises(ValueError, match="unknown keys"):
        FolderSegmentation(tmp_path)
    (tmp_path / "classes.yaml").write_text("[a, b]\n")
    assert FolderSegmentation(tmp_path).classes == ["a", "b"]


@pytest.mark.parametrize(
    ("palette", "message"),
    [
        ([[0, 0, 0], [255, 0, 0], [255, 0, 0]], "'b' and 'c' have the same colour"),
        ([[0, 0, 0], [256, 0, 0], [0, 0, 255]], "colour \\[256, 0, 0\\] of class 'b'"),
        ([[0, 0, 0], [-1, 0, 0], [0, 0, 255]], "of class 'b' is not three integers"),
        ([[0, 0, 0], [9, 9, 9]], "2 palette colours for 3 classes"),
    ],
)
def test_bad_palettes_name_the_classes_file(tmp_path, palette, message):
    _tree(tmp_path, [np.zeros((4, 4), np.uint8)])
    (tmp_path / "classes.yaml").write_text(f"classes: [a, b, c]\npalette: {palette}\n")
    with pytest.raises(ValueError, match=f"classes.yaml: .*{message}"):
        FolderSegmentation(tmp_path)


def test_voc_palette_masks_and_jpeg_masks(tmp_path):
    from PIL import Image

    ids = np.array([[0, 1], [255, 2]], np.uint8)
    _tree(tmp_path, [ids])
    voc = Image.fromarray(ids, mode="P")
    voc.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253)
    voc.save(tmp_path / "masks" / "im0.png")  # a VOC-style palette PNG
    ds = FolderSegmentation(tmp_path, classes=["a", "b", "c"])
    assert np.array_equal(ds[0][1], ids)
    (tmp_path / "masks" / "im0.png").rename(tmp_path / "masks" / "im0.jpg")
    with pytest.raises(ValueError, match="im0.jpg: a JPEG mask"):
        FolderSegmentation(tmp_path, classes=["a", "b", "c"])


def test_exif_rotated_image_beside_its_mask_is_read_as_stored(tmp_path):
    from PIL import Image

    _tree(tmp_path, [np.zeros((20, 40), np.uint8)])
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "images" / "im0.png").unlink()
    Image.new("RGB", (40, 20)).save(tmp_path / "images" / "im0.jpg", exif=exif.tobytes())
    image, mask = FolderSegmentation(tmp_path, classes=["a"])[0]
    assert image.shape[:2] == mask.shape == (20, 40)


def test_masks_without_images_are_named_and_jfif_is_read(tmp_path):
    _tree(tmp_path, [np.zeros((4, 4), np.uint8)] * 2)
    jpeg = cv2.imencode(".jpg", np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    (tmp_path / "images" / "im1.png").unlink()
    (tmp_path / "images" / "im1.heic").write_bytes(b"not read here")
    with pytest.raises(FileNotFoundError, match=r"1 mask\(s\) without an image, first .*im1.png: "
                       r"its image im1.heic is not in a format read here"):  # fmt: skip
        FolderSegmentation(tmp_path, classes=["a", "b"])
    (tmp_path / "images" / "im1.heic").unlink()
    with pytest.raises(FileNotFoundError, match=r"im1.png: no image im1\.\* in"):
        FolderSegmentation(tmp_path, classes=["a", "b"])
    (tmp_path / "images" / "im1.jfif").write_bytes(jpeg)  # a phone's JPEG under .jfif
    ds = FolderSegmentation(tmp_path, classes=["a", "b"])
    assert len(ds) == 2 and ds[1][0].shape == (4, 4, 3)


def test_binary_masks_saved_as_0_and_255(tmp_path):
    m = np.zeros((4, 4), np.uint8)
    m[:2] = 255
    _tree(tmp_path, [m])
    ds = FolderSegmentation(tmp_path, classes=["background", "crack"])
    with pytest.raises(ValueError, match=r"im0.png: holds only 0 and 255 for a 2-class dataset.*"
                       r"mask_values=\{255: 1\}"):  # fmt: skip
        ds[0]
    ds = build_dataset("folder", None, tmp_path, classes=["background", "crack"],
                       mask_values={255: 1})  # fmt: skip
    assert ds[0][1].tolist() == [[1] * 4] * 2 + [[0] * 4] * 2
    ds = FolderSegmentation(tmp_path, classes=["background", "crack"], mask_values={255: 255})
    assert set(np.unique(ds[0][1]).tolist()) == {0, 255}
    with pytest.raises(ValueError, match="mask_values"):
        FolderSegmentation(tmp_path, classes=["a", "b"], mask_values={"x": 1})
