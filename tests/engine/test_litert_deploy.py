"""LiteRT exports (.tflite, XNNPACK): fp32 and int8, logits or labels out, written only after
running in LiteRT's interpreter against PyTorch; run as an app would from the card alone.
Apart from the ExecuTorch tests so that a parallel run (pytest-xdist) can take each file."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from helpers import phone_checkpoint

from segmnv3 import Segmenter
from segmnv3.checkpoint import load_model
from segmnv3.data.samples import scenes
from segmnv3.engine.mobile_deploy import export_mobile
from segmnv3.inference.mobile import MobileGraph, read_card, spec_of
from segmnv3.postprocess import upsample_argmax

SIZE = (64, 128)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The data and checkpoint the ExecuTorch tests export from (nothing exported here)."""
    tmp = tmp_path_factory.mktemp("tflite")
    return tmp, phone_checkpoint(tmp)


def test_tflite_names_its_extra_when_missing(trained, tmp_path, monkeypatch):
    tmp, ckpt = trained
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "litert_torch" else real(n, *a))  # fmt: skip
    with pytest.raises(ValueError, match=r"litert-torch \(LiteRT's converter\) is not "
                       r"installed: pip install 'segmnv3\[litert\]'"):  # fmt: skip
        export_mobile(ckpt, tmp_path / "m.tflite", fmt="tflite", size=SIZE,
                      calib=str(tmp / "data" / "val"), calib_count=2)  # fmt: skip
    assert not list(tmp_path.iterdir())


def _by_the_card(path: Path, image):
    """Labels of a .tflite run in LiteRT's own interpreter the way an app would, from the
    card alone (no segmnv3 code): resize, feed uint8 NHWC, dequantize, argmax."""
    import cv2
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    card = json.loads(Path(str(path) + ".json").read_text())
    _, h, w, _ = card["input"]["shape"]
    assert card["input"]["dtype"] == "uint8" and card["input"]["layout"] == "NHWC"
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"],
                  cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)[None])  # fmt: skip
    it.invoke()
    out = card["outputs"][0]
    logits = it.get_tensor(it.get_output_details()[0]["index"]).astype(np.float32)
    if "quantization" in out:
        logits = (logits - out["quantization"]["zero_point"]) * out["quantization"]["scale"]
    assert list(logits.shape) == out["shape"] and out["layout"] == "NCHW"
    return logits[0].argmax(0)


def test_tflite_fp32_and_int8_run_in_litert(trained, tmp_path):
    """LiteRT (segmnv3[litert], in .[dev]): fp32 and int8 in one XNNPACK partition, int8
    all in int8 (hardswish split before converting), checked as the app would run them."""
    pytest.importorskip("litert_torch")
    tmp, ckpt = trained
    lines = []
    report = export_mobile(ckpt, tmp_path / "m.tflite", fmt="tflite", size=SIZE, int8=True,
                           calib=str(tmp / "data" / "val"), calib_count=3,
                           log=lines.append)  # fmt: skip
    assert report["fp32"]["label_agreement"] >= 0.999
    assert abs(report["int8"]["mIoU"] - report["int8"]["fp32_pytorch_mIoU"]) <= 0.5
    for precision, name in (("fp32", "m.tflite"), ("int8", "m.int8.tflite")):
        assert report[precision]["xnnpack_partitions"] == 1, precision
        assert report[precision]["outside_delegate"] == []
        card = read_card(tmp_path / name)
        assert card["format"] == "tflite" and card["versions"]["ai-edge-litert"] == "2.3.0"
    int8_card = read_card(tmp_path / "m.int8.tflite")
    assert int8_card["outputs"][0]["dtype"] == "int8" and int8_card["checks"]["float_ops"] == []
    assert int8_card["outputs"][0]["quantization"]["scale"] > 0
    assert report["int8"]["MB"] < 0.5 * report["fp32"]["MB"]
    model = load_model(ckpt).model.eval()
    image = next(scenes("val", 1, SIZE, 2))[1]
    graph = MobileGraph(model, spec_of(int8_card))
    with torch.no_grad():
        logits = graph(graph.feed(image))
    reference = upsample_argmax(logits, SIZE)[0].numpy()
    low_reference = logits[0].argmax(0).numpy()
    for name, floor in (("m.tflite", 0.999), ("m.int8.tflite", 0.9)):
        seg = Segmenter.from_checkpoint(tmp_path / name)
        assert seg.backend_name == "litert"
        mine = seg.predict(image)
        assert (mine == reference).mean() >= floor, name
        low = _by_the_card(tmp_path / name, image)  # outside segmnv3: the card alone
        assert low.shape == low_reference.shape and (low == low_reference).mean() >= floor


def test_tflite_labels_out_is_one_delegate_partition(trained, tmp_path):
    pytest.importorskip("litert_torch")
    tmp, ckpt = trained
    report = export_mobile(ckpt, tmp_path / "l.tflite", fmt="tflite", size=SIZE,
                           labels_out=True, int8=True, calib=str(tmp / "data" / "val"),
                           calib_count=3, log=lambda *_: None)  # fmt: skip
    for precision in ("fp32", "int8"):  # int8: the labels' comparisons stay float, delegated
        checks = report[precision]
        assert checks["outside_delegate"] == [] and checks["xnnpack_partitions"] == 1
    assert report["fp32"]["label_agreement"] >= 0.999
    assert not any("CellArgmax" in op for op in report["int8"]["float_ops"])
    card = read_card(tmp_path / "l.int8.tflite")
    assert card["outputs"][0]["name"] == "labels" and card["outputs"][0]["shape"] == [1, *SIZE]
    assert card["outputs"][0]["dtype"] == "uint8"
