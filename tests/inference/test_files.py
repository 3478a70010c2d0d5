import numpy as np
import pytest
from helpers import make_checkpoint

from segmnv3 import Segmenter
from segmnv3.cli.predict import main
from segmnv3.config import load_config
from segmnv3.data.synthetic import CLASSES, PALETTE
from segmnv3.inference.files import predict_files
from segmnv3.io import read_image, write_png


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    return make_checkpoint(tmp_path_factory.mktemp("seg") / "m.pt", config, CLASSES, PALETTE)


@pytest.fixture(scope="module")
def seg(ckpt):
    return Segmenter.from_checkpoint(ckpt)


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_predict_files_writes_each_kind_in_its_folder(seg, tmp_path):
    for i in range(3):
        write_png(tmp_path / "in" / f"im{i}.png", _image(30, 40, i))
    written = predict_files(seg, [str(tmp_path / "in")], tmp_path / "out", color=True,
                            overlay=True, progress=False)  # fmt: skip
    assert [p.name for p in written] == ["im0.png", "im1.png", "im2.png"]
    assert np.array_equal(read_image(written[1])[..., 0], seg.predict(tmp_path / "in" / "im1.png"))
    assert (tmp_path / "out" / "color" / "im0.png").is_file()
    assert (tmp_path / "out" / "overlay" / "im2.png").is_file()
    written = predict_files(seg, [str(tmp_path / "in" / "im1*")], tmp_path / "o2", progress=False)
    assert len(written) == 1
    with pytest.raises(FileNotFoundError, match="nothing"):
        predict_files(seg, [str(tmp_path / "nothing")], tmp_path / "o3", progress=False)


def test_outputs_never_replace_inputs_or_each_other(seg, tmp_path):
    photos = tmp_path / "photos"
    for name in ("a/photo.png", "b/photo.png", "x.png", "x_color.png"):
        write_png(photos / name, _image(20, 24, len(name)))
    before = {p: p.read_bytes() for p in photos.rglob("*.png")}
    # Masks into the input folder itself: x.png would replace the photo x.png.
    with pytest.raises(ValueError, match="x.png is an input file"):
        predict_files(seg, [str(photos)], photos, progress=False)
    # Same stem in two folders, and x_color.png beside x.png: sub-folders keep them apart.
    inputs = [str(photos / "a" / "photo.png"), str(photos / "b" / "photo.png"),
              str(photos / "x.png"), str(photos / "x_color.png")]  # fmt: skip
    written = predict_files(seg, inputs, tmp_path / "out", color=True, progress=False)
    names = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert names == ["a/photo.png", "b/photo.png", "color/a/photo.png", "color/b/photo.png",
                     "color/x.png", "color/x_color.png", "x.png", "x_color.png"]  # fmt: skip
    assert len(written) == 4
    # Same stem, other extension, same folder: refused before anything is written.
    write_png(photos / "a" / "photo.jpg.png", _image(20, 24))  # decoy, not a clash
    (photos / "a" / "photo.bmp").write_bytes((photos / "a" / "photo.png").read_bytes())
    with pytest.raises(ValueError, match="would both be written as photo\\.\\*"):
        predict_files(seg, [str(photos / "a")], tmp_path / "out2", progress=False)
    assert not (tmp_path / "out2").exists()
    # A second run into the same folder does not replace the first run's masks...
    with pytest.raises(FileExistsError, match="--overwrite"):
        predict_files(seg, inputs, tmp_path / "out", progress=False)
    # ...unless asked to; and the photos are untouched throughout.
    predict_files(seg, inputs, tmp_path / "out", overwrite=True, progress=False)
    assert all(p.read_bytes() == data for p, data in before.items())


def test_predict_tool_exit_codes(ckpt, tmp_path, capsys):
    write_png(tmp_path / "in" / "a.png", _image(20, 24))
    assert main([str(tmp_path / "in"), "--checkpoint", str(ckpt), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 0  # fmt: skip
    assert "wrote 1 outputs" in capsys.readouterr().out
    # Bad input: one line naming the file, exit 2.
    code = main([str(tmp_path / "missing.png"), "--checkpoint", str(ckpt), "--out", "o"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "missing.png" in err
    code = main([str(tmp_path / "in"), "--checkpoint", str(tmp_path / "no.pt"), "--out", "o"])
    assert code == 2 and "no.pt" in capsys.readouterr().err
    assert main(["--bogus"]) == 2  # usage
