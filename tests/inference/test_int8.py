import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from segmnv3.inference.int8_graph import float_hard_swish, uint8_hard_sigmoid
from segmnv3.inference.onnx import ort_session


def _hardswish_qdq(scale: float, zero: int) -> onnx.ModelProto:
    """x → Q → DQ → hard-swish (HardSigmoid, Q/DQ, Mul) → y, as ONNX Runtime's quantizer
    writes it for a MobileNetV3 activation."""
    inits = [
        numpy_helper.from_array(np.float32(scale), "x_scale"),
        numpy_helper.from_array(np.uint8(zero), "x_zero"),
        numpy_helper.from_array(np.float32(1 / 255), "h_scale"),
        numpy_helper.from_array(np.uint8(0), "h_zero"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"]),
        helper.make_node("HardSigmoid", ["x_dq"], ["h"], alpha=1 / 6, beta=0.5),
        helper.make_node("QuantizeLinear", ["h", "h_scale", "h_zero"], ["h_q"]),
        helper.make_node("DequantizeLinear", ["h_q", "h_scale", "h_zero"], ["h_dq"]),
        helper.make_node("Mul", ["x_dq", "h_dq"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "hardswish",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 16, 16])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(proto, x):
    return ort_session(proto.SerializeToString()).run(["y"], {"x": x})[0]


@pytest.mark.parametrize(
    "low, high",
    [(-8.0, 12.0), (-3.5, 3.5), (-1.0, 2.0), (0.0, 40.0)],  # the last two get widened
)
def test_uint8_hard_sigmoid_matches_hardswish(low, high):
    scale = (high - low) / 255
    zero = round(-low / scale)
    x = np.linspace(low, high, 512, dtype=np.float32).reshape(1, 2, 16, 16)
    proto = _hardswish_qdq(scale, zero)
    before = _run(proto, x)
    assert uint8_hard_sigmoid(proto) == 1
    ops = [n.op_type for n in proto.graph.node]
    assert "HardSigmoid" not in ops and ops.count("Clip") == 1
    after = _run(proto, x)
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    s = float(inits["x_scale"])
    xq = np.clip(x, min(low, -3), max(high, 3))
    exact = xq * np.clip(xq / 6 + 0.5, 0, 1)
    # One quantization step of x, seen through x·hardsigmoid(x), bounds the difference.
    bound = s * (1 + max(abs(low), abs(high), 3) / 6) + 1e-6
    assert np.abs(after - exact).max() <= bound
    if low <= -3 and high >= 3:  # not widened: the quantization of x is untouched
        assert s == pytest.approx(scale)
        assert np.abs(after - before).max() <= bound
    else:
        assert s > scale


def test_uint8_hard_sigmoid_leaves_other_hard_sigmoids():
    proto = _hardswish_qdq(0.05, 128)
    hs = next(n for n in proto.graph.node if n.op_type == "HardSigmoid")
    hs.attribute[0].f = 0.2  # alpha 0.2: ONNX's default, not MobileNetV3's
    assert uint8_hard_sigmoid(proto) == 0
    assert any(n.op_type == "HardSigmoid" for n in proto.graph.node)


def test_float_hard_swish_gives_openvino_one_hardswish_on_the_float_input():
    proto = _hardswish_qdq(12 / 255, 128)
    assert uint8_hard_sigmoid(proto) == 1
    assert float_hard_swish(proto) == 1
    assert [n.op_type for n in proto.graph.node] == ["HardSwish"]  # the Q/DQ and Clip pruned
    assert list(proto.graph.node[0].input) == ["x"]
    x = np.linspace(-6, 6, 512, dtype=np.float32).reshape(1, 2, 16, 16)
    np.testing.assert_allclose(_run(proto, x), x * np.clip(x / 6 + 0.5, 0, 1), atol=1e-6)


def test_float_hard_swish_leaves_other_clips():
    proto = _hardswish_qdq(12 / 255, 128)
    uint8_hard_sigmoid(proto)
    inits = {t.name: t for t in proto.graph.initializer}
    lo = next(n for n in proto.graph.node if n.op_type == "Clip").input[1]
    inits[lo].CopyFrom(numpy_helper.from_array(np.uint8(40), lo))  # clip(x + 4.9, ...): not it
    assert float_hard_swish(proto) == 0
    assert "Clip" in [n.op_type for n in proto.graph.node]


def test_int8_segmenter_masks_agree_with_the_whole_int8_graph(tmp_path):
    import torch

    from segmnv3 import Segmenter, build_model
    from segmnv3.data.synthetic import SyntheticSegmentation
    from segmnv3.inference import OrtBackend
    from segmnv3.inference.int8 import quantize_int8
    from segmnv3.inference.onnx import export_onnx

    torch.manual_seed(0)
    model = build_model("lraspp", 4, backbone="mobilenet_v3_small").eval()
    images = [SyntheticSegmentation("val", 4, size=(96, 128)).load(i)[0] for i in range(4)]
    classes, palette = list("abcd"), [(0, 0, 0)] * 4
    fp32 = tmp_path / "m.onnx"
    export_onnx(model, fp32, classes=classes, palette=palette)
    prepare = Segmenter(OrtBackend.load(fp32), classes, palette).prepare
    batch = np.stack([prepare(im) for im in images])
    with torch.no_grad():  # centre the random model's logits so that every class shows up
        low = model(torch.from_numpy(batch), upsample=False)["out"]
        model.classifier.low_classifier.bias -= low.mean((0, 2, 3))
    export_onnx(model, fp32, classes=classes, palette=palette)
    quantize_int8(fp32, tmp_path / "q.onnx", (x[None] for x in batch))
    seg = Segmenter(OrtBackend.load(tmp_path / "q.onnx"), classes, palette)
    whole = ort_session(str(tmp_path / "q.onnx"))
    for image, x in zip(images, batch, strict=True):
        mask = seg.predict(image)
        assert len(np.unique(mask)) >= 3
        (labels,) = whole.run(["labels"], {"input": x[None]})
        # The graph upsamples uint8 logits in uint8 (rounding); segmnv3 in float (exact).
        assert (labels[0] == mask).mean() >= 0.95


@pytest.mark.parametrize("bits, top", [(7, 64), (8, 127)])
def test_weight_bits_set_the_weights_range_and_the_metadata(tmp_path, bits, top):
    """7-bit weights stay within ±64 (no VPMADDUBSW saturation without VNNI); 8-bit ones use
    ±127. The file says which it has."""
    import torch

    from segmnv3 import build_model
    from segmnv3.inference.int8 import quantize_int8
    from segmnv3.inference.onnx import export_onnx, load_onnx_metadata

    torch.manual_seed(0)
    model = build_model("lraspp", 3, backbone="mobilenet_v3_small").eval()
    fp32, q = tmp_path / "m.onnx", tmp_path / f"m{bits}.onnx"
    export_onnx(model, fp32, classes=list("abc"), palette=[(0, 0, 0)] * 3)
    calib = np.random.default_rng(0).standard_normal((2, 1, 3, 64, 64)).astype(np.float32)
    quantize_int8(fp32, q, iter(calib), weight_bits=bits)
    proto = onnx.load(str(q))
    weights = [numpy_helper.to_array(t) for t in proto.graph.initializer
               if t.data_type == TensorProto.INT8 and len(t.dims) == 4]  # fmt: skip
    assert len(weights) > 20
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) == top
    assert load_onnx_metadata(q)["int8_weight_bits"] == bits
    with pytest.raises(ValueError, match="int8 weight bits 6; choose 7 or 8"):
        quantize_int8(fp32, tmp_path / "x.onnx", iter(calib), weight_bits=6)
