import pytest
import torch
from helpers import make_checkpoint
from torchvision.models.segmentation import lraspp_mobilenet_v3_large

import segmnv3
from segmnv3.checkpoint import load_model
from segmnv3.config import load_config
from segmnv3.data.synthetic import CLASSES, PALETTE


@pytest.fixture(scope="module")
def tv_state():
    return lraspp_mobilenet_v3_large(weights=None, weights_backbone=None).state_dict()


@pytest.mark.parametrize("wrap", ["model", "state_dict", "module"])
def test_wrapped_torchvision_state_dicts_are_unwrapped(tmp_path, tv_state, wrap):
    state = {f"module.{k}": v for k, v in tv_state.items()} if wrap == "module" else tv_state
    torch.save({wrap: state} if wrap != "module" else state, tmp_path / "w.pth")
    loaded = load_model(tmp_path / "w.pth")
    assert loaded.source == "torchvision" and len(loaded.classes) == 21
    key = "classifier.low_classifier.weight"
    assert torch.equal(loaded.model.state_dict()[key], tv_state[key])


def test_files_that_are_not_checkpoints_are_named(tmp_path, tv_state):
    cases = {
        "text.pt": "a text file, not a PyTorch checkpoint",
        "whole.pt": "holds pickled Python objects .*save its weights instead",
        "image.pt": "not a PyTorch checkpoint",
        "model.onnx": "an ONNX model, not a PyTorch checkpoint",
        "backbone.pth": "neither a segmnv3 checkpoint nor a torchvision",
        "trunc.pth": "not a readable PyTorch checkpoint \\(truncated or corrupt",
    }
    (tmp_path / "text.pt").write_text("epoch: 3\nlr: 0.1\n")
    torch.save(segmnv3.build_model("lraspp", 3), tmp_path / "whole.pt")
    (tmp_path / "image.pt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(50))
    torch.save(segmnv3.build_model("lraspp", 3).backbone.state_dict(), tmp_path / "backbone.pth")
    torch.save(tv_state, tmp_path / "full.pth")
    (tmp_path / "trunc.pth").write_bytes((tmp_path / "full.pth").read_bytes()[:5000])
    for name, message in cases.items():
        with pytest.raises(ValueError, match=f"{name}: {message}"):
            load_model(tmp_path / name)


def test_checkpoint_without_classes_or_with_other_weights(tmp_path):
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    path = make_checkpoint(tmp_path / "m.pt", config, CLASSES, PALETTE)
    state = torch.load(path, weights_only=True)
    del state["classes"]
    torch.save(state, tmp_path / "nocls.pt")
    with pytest.raises(ValueError, match="nocls.pt: a segmnv3 checkpoint without 'classes'"):
        load_model(tmp_path / "nocls.pt")
    state = torch.load(path, weights_only=True)
    state["model_args"]["head"] = "fcn"
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: weights do not fit the model"):
        load_model(tmp_path / "other.pt")


def test_a_checkpoint_rebuilds_its_model_from_model_args(tmp_path):
    import torch
    from helpers import make_checkpoint

    from segmnv3.checkpoint import load_checkpoint, rebuild_model
    from segmnv3.config import load_config
    from segmnv3.data.synthetic import CLASSES, PALETTE

    config = load_config(overrides=["model.backbone=mobilenet_v3_small", "model.head=fcn"])
    state = load_checkpoint(make_checkpoint(tmp_path / "m.pt", config, CLASSES, PALETTE))
    assert state["model_args"]["head"] == "fcn" and state["model_args"]["num_classes"] == 5
    model = rebuild_model(state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state["model"][key])
    old = {k: v for k, v in state.items() if k != "model_args"}  # before model_args existed
    assert type(rebuild_model(old).classifier) is type(model.classifier)
    bad = {**state, "model_args": {**state["model_args"], "num_classes": 7}}
    with pytest.raises(ValueError, match="m.pt: model_args .* do not fit its 5 classes"):
        rebuild_model(bad, tmp_path / "m.pt")


def test_a_checkpoint_damaged_inside_a_tensor_is_refused(tmp_path):
    """2,000 bytes changed inside one tensor's data, the zip directory intact: torch.load
    reads it without complaint; the digests saved with the checkpoint catch it."""
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    path = make_checkpoint(tmp_path / "m.pt", config, CLASSES, PALETTE)
    data = bytearray(path.read_bytes())
    state = torch.load(path, weights_only=True)
    key = max(state["model"], key=lambda k: state["model"][k].numel())
    raw = state["model"][key].numpy().tobytes()
    start = bytes(data).find(raw[:4096])
    assert start > 0  # the tensor's bytes are stored as they are
    data[start + 100 : start + 2100] = bytes(2000)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(data))
    assert not torch.equal(torch.load(bad, weights_only=True)["model"][key], state["model"][key])
    with pytest.raises(ValueError, match=f"bad.pt: corrupt: tensor '{key}' differs"):
        load_model(bad)
    assert load_model(path).source == "segmnv3"
