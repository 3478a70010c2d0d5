from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from segmnv3.inference.onnx import check_onnx, load_onnx_metadata, ort_session
from segmnv3.models import HEADS, build_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("head", sorted(HEADS))
def test_onnx_parity_at_several_sizes(head, tmp_path):
    from segmnv3.inference.onnx import export_onnx

    model = build_model(head, 4, backbone="mobilenet_v3_small", aux=head != "lraspp").eval()
    data = export_onnx(model, tmp_path / "m.onnx", classes=list("abcd"), palette=[(0, 0, 0)] * 4)
    rows = check_onnx(model, ort_session(data), sizes=[(32, 32), (97, 131), (64, 160)])
    assert len(rows) == 3
    for row in rows:
        assert row["max_abs_diff"] <= 1e-4 and row["argmax_agreement"] >= 0.999
    meta = load_onnx_metadata(tmp_path / "m.onnx")
    assert meta["classes"] == list("abcd") and meta["resize"] is None


def test_lowres_graph_outputs_the_logits_before_upsampling(tmp_path):
    from segmnv3.inference.onnx import export_onnx, lowres_graph

    model = build_model("lraspp", 4, backbone="mobilenet_v3_small").eval()
    data = export_onnx(model, None, classes=list("abcd"), palette=[(0, 0, 0)] * 4)
    session = ort_session(lowres_graph(data))
    assert [o.name for o in session.get_outputs()] == ["logits_lowres"]
    config = session.get_session_options().get_session_config_entry
    assert config("session.intra_op.allow_spinning") == "0"  # threads sleep between runs
    assert "Resize" in {n.op_type for n in onnx.load_from_string(data).graph.node}
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 128)).astype(np.float32)
    (low,) = session.run(None, {"input": x})
    with torch.no_grad():
        ref = model(torch.from_numpy(x), upsample=False)["out"].numpy()
    np.testing.assert_allclose(low, ref, atol=1e-4)


def test_check_fails_when_the_graph_differs():
    from segmnv3.inference.onnx import export_onnx

    a = build_model("lraspp", 3, backbone="mobilenet_v3_small").eval()
    b = build_model("lraspp", 3, backbone="mobilenet_v3_small").eval()
    session = ort_session(export_onnx(b, None, classes=list("abc"), palette=[(0, 0, 0)] * 3))
    with pytest.raises(AssertionError, match="differs from PyTorch"):
        check_onnx(a, session, sizes=[(32, 32)])
