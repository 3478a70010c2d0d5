"""Runtimes under careless use: files that are not what they claim, bad thread counts,
empty images, a precision the file can't run."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from segmnv3 import Segmenter, build_model
from segmnv3.inference import OpenVinoBackend, OrtBackend
from segmnv3.inference.int8 import quantize_int8
from segmnv3.inference.onnx import export_onnx

CLASSES, PALETTE = list("abc"), [(0, 0, 0), (1, 1, 1), (2, 2, 2)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runtimes")
    torch.manual_seed(0)
    model = build_model("lraspp", 3, backbone="mobilenet_v3_small").eval()
    fp32 = tmp / "m.onnx"
    export_onnx(model, fp32, classes=CLASSES, palette=PALETTE)
    calib = np.random.default_rng(0).standard_normal((2, 1, 3, 64, 64)).astype(np.float32)
    quantize_int8(fp32, tmp / "m.int8.onnx", iter(calib))
    # Another graph (an identity) carrying segmnv3's metadata.
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["out"])], "identity",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 3, "h", "w"])],
    )  # fmt: skip
    other = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    meta = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    helper.set_model_props(other, meta)
    onnx.save(other, str(tmp / "identity.onnx"))
    (tmp / "empty.onnx").write_bytes(b"")
    return tmp


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_another_graph_with_segmnv3_metadata_is_refused(files, backend):
    with pytest.raises(ValueError, match=r"identity.onnx: outputs \['out'\].*not the segmentation"):
        Segmenter.from_checkpoint(files / "identity.onnx", backend=backend)


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_an_empty_file_is_called_empty(files, backend):
    with pytest.raises(ValueError, match="empty.onnx: file is empty"):
        Segmenter.from_checkpoint(files / "empty.onnx", backend=backend)
    runner = {"openvino": OpenVinoBackend, "onnxruntime": OrtBackend}[backend]
    with pytest.raises(ValueError, match="empty.onnx: file is empty"):
        runner.load(files / "empty.onnx")


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime", "torch"])
def test_bad_thread_counts_are_named(files, backend, tmp_path):
    model = build_model("lraspp", 3, backbone="mobilenet_v3_small").eval()
    for bad in (-1, 0):
        with pytest.raises(ValueError, match=f"num_threads {bad}: give a thread count >= 1"):
            Segmenter.from_model(model, CLASSES, PALETTE, backend=backend, num_threads=bad)


def test_torch_backend_honours_num_threads():
    model = build_model("lraspp", 3, backbone="mobilenet_v3_small").eval()
    before = torch.get_num_threads()
    try:
        Segmenter.from_model(model, CLASSES, PALETTE, backend="torch", num_threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_empty_image_is_named(files):
    seg = Segmenter.from_checkpoint(files / "m.onnx", backend="openvino", precision="fp32")
    with pytest.raises(ValueError, match=r"image 0: an empty image \(shape \(0, 10, 3\)\)"):
        seg.predict(np.zeros((0, 10, 3), np.uint8))


@pytest.mark.parametrize("cpu_bf16", [True, False], ids=["native-bf16", "no-bf16"])
def test_bf16_asked_of_an_int8_file_is_refused(files, monkeypatch, cpu_bf16):
    # The file's reason comes first on every CPU (it once lost to the CPU's on AVX2).
    monkeypatch.setattr("segmnv3.inference.precision.native_bf16", lambda *a: cpu_bf16)
    with pytest.raises(ValueError, match="precision 'bf16': .*m.int8.onnx is an int8 model"):
        Segmenter.from_checkpoint(files / "m.int8.onnx", backend="openvino", precision="bf16")
    seg = Segmenter.from_checkpoint(files / "m.int8.onnx", backend="openvino")
    assert seg.precision == "int8"
