"""The dataset check (segmnv3-data check): counts, pixel shares, problems, pictures, exit codes."""

import numpy as np

from segmnv3.cli.data import main
from segmnv3.data.check import check_dataset
from segmnv3.data.samples import scenes, write_sample_data
from segmnv3.io import read_image, write_png


def test_report_counts_every_pixel_of_every_split(tmp_path):
    root = write_sample_data("voc", tmp_path / "voc", 3, 2, (24, 32))
    report = check_dataset(root)
    assert report.layout == "voc" and report.breaking == []
    assert {k: s.count for k, s in report.splits.items()} == {"train": 3, "val": 2}
    assert report.classes == ["background", "disc", "box", "triangle", "star"]
    pixels = report.pixels()
    assert pixels.sum() == 5 * 24 * 32 and pixels[-1] > 0  # VOC's boundaries are ignore
    want = np.zeros(5, np.int64)
    for split, n in (("train", 3), ("val", 2)):
        for _, _, mask, _ in scenes(split, n, (24, 32), 0):
            want += np.bincount(mask.ravel(), minlength=5)
    assert (pixels[:5] <= want).all() and pixels[:5].sum() + pixels[-1] == want.sum()
    assert report.splits["val"].sizes == {(32, 24): 2}


def test_problems_are_named_and_break_the_exit_code(tmp_path, capsys, monkeypatch):
    root = write_sample_data("folder", tmp_path / "mine", 3, 2, (24, 32))
    write_png(root / "val" / "masks" / "val_00001.png", np.full((24, 32), 7, np.uint8))
    write_png(root / "train" / "masks" / "train_00002.png", np.zeros((20, 32), np.uint8))
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(root), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert "read as folder: 2 train / 1 val images, 5 classes" in out  # the readable ones
    assert "problems: 2 would break training" in out
    assert "[error] val val_00001: " in out and "class ids [7] are >= the number" in out
    assert "[error] train train_00002: " in out and "mask size 32×20 differs" in out
    assert err.startswith("error: 2 problem(s) would break training; first, ")
    chart = read_image(tmp_path / "data_check" / "mine" / "class_pixels.png")
    assert chart.shape[0] > 100 and (chart != 255).any()
    assert main(["check", str(root), "--no-progress"]) == 2  # a second check: new folder
    assert (tmp_path / "data_check" / "mine-2" / "samples.png").is_file()
    capsys.readouterr()
    assert main(["check", str(root), "--no-progress", "--out", "data_check/mine"]) == 2
    assert "already holds a check's pictures" in capsys.readouterr().err


def test_a_clean_tree_exits_0_and_notes_absent_classes(tmp_path, capsys, monkeypatch):
    root = write_sample_data("ultralytics", tmp_path / "ul", 2, 1, (24, 32))
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(root), "--no-progress", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "read as ultralytics: 2 train / 1 val images, 5 classes" in out
    assert "image sizes: 32×24 (3)" in out and "wrote data_check/ul/samples.png" in out
    sheet = read_image(tmp_path / "data_check" / "ul" / "samples.png")
    assert sheet.shape[0] > 2 * 200  # two rows of image + overlay
    spec = (root / "data.yaml").read_text().replace("  4: star\n", "  4: star\n  5: kite\n")
    (root / "data.yaml").write_text(spec)
    notes = [(p.where, p.message) for p in check_dataset(root).problems]
    assert ("all", "class 5 'kite' never appears") in notes


def test_nothing_recognised_is_one_line(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    assert main(["check", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "is in no layout read here" in capsys.readouterr().err
    assert main(["check"]) == 2  # usage: the root is missing
