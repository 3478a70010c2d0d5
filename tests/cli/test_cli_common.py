import subprocess
import sys

import pytest

from segmnv3.cli import bench, eval, export, predict, sample_data, train


def test_models_import_neither_data_nor_its_libraries():
    code = ("import sys, segmnv3.models, segmnv3.metrics, segmnv3.postprocess; "
            "print(sorted(m for m in ('segmnv3.data', 'albumentations', 'pycocotools', "
            "'segmnv3.inference') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    import segmnv3

    assert set(segmnv3.HEADS) == {"lraspp", "deeplabv3", "fcn"}
    assert {"cityscapes", "coco", "folder", "synthetic"} <= set(segmnv3.DATASETS)
    assert segmnv3.Segmenter.__name__ == "Segmenter" and callable(segmnv3.build_model)
    assert segmnv3.ConfusionMatrix(3).num_classes == 3
    with pytest.raises(AttributeError, match="no_such_name"):
        segmnv3.no_such_name  # noqa: B018


@pytest.mark.parametrize("tool", [train, eval, predict, export, bench, sample_data])
def test_every_tool_has_the_same_shape(tool, capsys):
    assert tool.build_parser().prog.endswith(".py")
    assert tool.main(["--help"]) == 0
    assert "usage:" in capsys.readouterr().out
    assert tool.main(["--no-such-flag"]) == 2


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    assert train.main(["train.epochz=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "epochz" in err and "valid keys: epochs" in err
    assert train.main(["--config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in capsys.readouterr().err


def test_sample_data_tool(tmp_path, capsys):
    assert sample_data.main(["--format", "folder", "--out", str(tmp_path / "f"), "--train", "1",
                             "--val", "1", "--size", "16", "16"]) == 0  # fmt: skip
    assert (tmp_path / "f").is_dir() and "wrote the folder sample tree" in capsys.readouterr().out


@pytest.mark.parametrize(("device", "message"), [("cdua", "unknown device 'cdua'"),
                                                 ("cuda:7", "device 'cuda:7'")])  # fmt: skip
def test_devices_are_checked_up_front(device, message, capsys, tmp_path):
    if device == "cuda:7" and __import__("torch").cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    assert train.main(["--device", device, f"out_dir={tmp_path}"]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_eval_bad_values_and_files(tmp_path, capsys):
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07" + bytes(20))
    assert eval.main(["--checkpoint", str(tmp_path / "m.onnx")]) == 2
    assert "m.onnx: an ONNX model, not a PyTorch checkpoint" in capsys.readouterr().err
    assert eval.main(["--checkpoint", "x.pt", "--scales", "1", "-0.5", "--tta"]) == 2
    assert "every scale must be > 0" in capsys.readouterr().err
    assert eval.main(["--checkpoint", "x.pt", "--resize", "-3"]) == 2
    assert "--resize -3" in capsys.readouterr().err
