import os
import stat

import cv2
import numpy as np
import pytest
from PIL import Image

from segmnv3.io import read_image, read_mask, write_bytes_atomic, write_png


def _jpeg(tmp_path, name="a.jpg", extra=b""):
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    path = tmp_path / name
    path.write_bytes(data.tobytes() + extra)
    return path


def test_truncation_is_decided_by_structure_not_the_last_bytes(tmp_path):
    # Data after the end marker (a phone's motion photo; bytes after a PNG's IEND) is fine.
    motion = _jpeg(tmp_path, "motion.jpg", b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    assert read_image(motion).shape == (24, 32, 3)
    png = tmp_path / "tail.png"
    write_png(png, np.full((8, 8, 3), 7, np.uint8))
    png.write_bytes(png.read_bytes() + b"trailing garbage" * 10)
    assert read_image(png).shape == (8, 8, 3)
    # Cut-off files are errors naming the file.
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(_jpeg(tmp_path).read_bytes()[:-200])
    with pytest.raises(ValueError, match="cut.jpg: truncated JPEG"):
        read_image(cut)
    cut_png = tmp_path / "cut.png"
    cut_png.write_bytes(png.read_bytes()[:40])
    with pytest.raises(ValueError, match="cut.png: truncated PNG"):
        read_image(cut_png)


def test_palette_masks_are_read_as_indices(tmp_path):
    ids = np.array([[0, 1, 2], [255, 15, 1]], np.uint8)
    voc = Image.fromarray(ids, mode="P")
    voc.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 3 % 256, i)])
    voc.save(tmp_path / "voc.png")
    assert np.array_equal(read_mask(tmp_path / "voc.png"), ids)


def test_jpeg_masks_are_refused(tmp_path):
    with pytest.raises(ValueError, match="a.jpg: a JPEG mask"):
        read_mask(_jpeg(tmp_path))


def test_exif_orientation_rule(tmp_path):
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    upright = read_image(tmp_path / "r.jpg")
    stored = read_image(tmp_path / "r.jpg", exif=False)
    assert upright.shape == (40, 20, 3) and stored.shape == (20, 40, 3)


def test_written_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "f.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644


@pytest.mark.parametrize("folder", ["/proc/segmnv3-test", "/sys/segmnv3-test"])
def test_unwritable_folder_is_named(folder):
    # Folders even root cannot write into (the tests run as root in CI).
    with pytest.raises(OSError, match=f"cannot write to folder {folder}") as info:
        write_bytes_atomic(f"{folder}/sub/f.bin", b"x")
    assert ".tmp" not in str(info.value)
