import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from helpers import make_checkpoint

from segmnv3 import Segmenter
from segmnv3.config import load_config
from segmnv3.data.samples import write_sample_data
from segmnv3.data.synthetic import CLASSES, PALETTE
from segmnv3.engine.deploy import export_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def test_export_tool_with_int8_on_labelled_data(tmp_path):
    root = write_sample_data("folder", tmp_path / "data", 0, 6, (64, 64), seed=5)
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    ckpt = make_checkpoint(tmp_path / "m.pt", config, CLASSES, PALETTE)
    out = tmp_path / "m.onnx"
    report = export_checkpoint(ckpt, out, int8=True, calib=str(root / "val"), calib_count=3,
                               speed_size=(64, 64), log=lambda *_: None)  # fmt: skip
    assert Path(report["int8"]).is_file() and report["int8_seconds"] > 0
    graph = onnx.load(report["int8"]).graph
    ops = {n.op_type for n in graph.node}  # hard sigmoids run as uint8 Clips
    assert "HardSigmoid" not in ops and "Clip" in ops
    assert [o.name for o in graph.output] == ["labels"]
    weights = [onnx.numpy_helper.to_array(t) for t in graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]  # fmt: skip
    assert weights and all(np.abs(w.astype(int)).max() <= 64 for w in weights)  # 255·64·2 < 2**15
    assert 0 <= report["int8_mIoU"] <= 1 and 0 <= report["fp32_mIoU"] <= 1
    q = Segmenter.from_checkpoint(report["int8"], backend="onnxruntime")
    f = Segmenter.from_checkpoint(out, backend="onnxruntime")
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    # runs without the tail: uint8 logits at stride 8, upsampled by segmnv3
    assert q.backend.lowres_logits(q.prepare(image)[None]).shape == (1, 5, 8, 8)
    assert q.backend.lowres_logits(q.prepare(image)[None]).dtype == torch.uint8
    mask = q.predict(image)
    assert mask.shape == (64, 64) and mask.dtype == np.uint8 and q.classes == CLASSES
    assert f.predict(image).shape == (64, 64)
    with pytest.raises(ValueError, match="needs the fp32 model"):
        q.predict_proba(image)
    with pytest.raises(ValueError, match="is an ONNX model: use backend 'openvino' or"):
        Segmenter.from_checkpoint(out, backend="torch")
    assert Segmenter.from_checkpoint(out).backend_name == "openvino"  # auto: the fastest
    # The int8 report scores held-out images only, on each ONNX runtime.
    assert set(report["mIoU"]) == {"onnxruntime fp32", "onnxruntime int8", "openvino fp32",
                                   "openvino int8"}  # fmt: skip
    with pytest.raises(FileExistsError, match="m.onnx exists"):
        export_checkpoint(ckpt, out, log=lambda *_: None)


def test_export_tool_command_and_errors(tmp_path):
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    ckpt = make_checkpoint(tmp_path / "m.pt", config, CLASSES, PALETTE)
    cmd = [sys.executable, str(ROOT / "tools" / "export_seg.py"), "--checkpoint", str(ckpt),
           "--format", "onnx", "--output", str(tmp_path / "m.onnx")]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-1500:]
    assert res.stdout.count("argmax agreement") == 3
    res = subprocess.run([*cmd, "--int8"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "--calib" in res.stderr
