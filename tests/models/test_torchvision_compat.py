import logging

import pytest
import torch
from torchvision.models import mobilenet_v3_large
from torchvision.models.segmentation import (
    deeplabv3_mobilenet_v3_large,
    lraspp_mobilenet_v3_large,
)

import segmnv3
from segmnv3.checkpoint import load_model
from segmnv3.models import count_parameters


@pytest.mark.parametrize(
    "head, aux, expected",
    [("lraspp", False, 3_221_538), ("deeplabv3", True, 11_029_328), ("fcn", False, 5_051_093)],
)
def test_parameter_counts_equal_torchvision(head, aux, expected):
    model = segmnv3.build_model(head, 21, reduced_tail=False, aux=aux)
    assert count_parameters(model) == expected


def _parity(tv_model, ours):
    ours.load_state_dict(tv_model.state_dict(), strict=True)
    tv_model.eval()
    ours.eval()
    x = torch.randn(2, 3, 97, 131)
    with torch.no_grad():
        a, b = tv_model(x), ours(x)
    assert set(a) == set(b)
    for key in a:
        assert (a[key] - b[key]).abs().max().item() <= 1e-5


def _randomize_bn(model):
    # Fresh BN stats are 0/1; random ones make the comparison meaningful in eval mode.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model


def test_lraspp_loads_torchvision_state_and_matches():
    tv = _randomize_bn(lraspp_mobilenet_v3_large(weights=None, weights_backbone=None))
    _parity(tv, segmnv3.build_model("lraspp", 21, reduced_tail=False))


def test_deeplabv3_with_aux_loads_torchvision_state_and_matches():
    tv = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True)
    _parity(_randomize_bn(tv), segmnv3.build_model("deeplabv3", 21, reduced_tail=False, aux=True))


@pytest.mark.parametrize("head", ["lraspp", "deeplabv3"])
def test_torchvision_file_is_detected(tmp_path, head):
    build = {"lraspp": lraspp_mobilenet_v3_large, "deeplabv3": deeplabv3_mobilenet_v3_large}
    tv = build[head](weights=None, weights_backbone=None, num_classes=7)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    loaded = load_model(tmp_path / "tv.pth")
    assert loaded.source == "torchvision" and loaded.config.model.head == head
    assert len(loaded.classes) == 7 and loaded.config.model.reduced_tail is False
    for key, value in tv.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


def test_pretrained_backbone_full_tail_loads_everything(tmp_path):
    tv = mobilenet_v3_large(weights=None)
    torch.save(tv.state_dict(), tmp_path / "mnv3.pth")
    model = segmnv3.build_model(
        "lraspp", 3, reduced_tail=False, pretrained_backbone=tmp_path / "mnv3.pth"
    )
    for key, value in tv.features.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value)


def test_pretrained_backbone_reduced_tail_skips_and_reports(tmp_path, caplog):
    tv = mobilenet_v3_large(weights=None)
    torch.save(tv.state_dict(), tmp_path / "mnv3.pth")
    with caplog.at_level(logging.WARNING):
        model = segmnv3.build_model("lraspp", 3, pretrained_backbone=tmp_path / "mnv3.pth")
    assert "features.13.block.0.0.weight" in caplog.text
    assert "classifier.0.weight" in caplog.text
    ours = model.backbone.state_dict()
    assert torch.equal(ours["4.block.0.0.weight"], tv.state_dict()["features.4.block.0.0.weight"])
    # The first tail block's expansion has the unreduced shape: it loads too.
    assert torch.equal(ours["12.block.0.0.weight"], tv.state_dict()["features.12.block.0.0.weight"])
    assert not torch.equal(ours["16.0.weight"][:1].flatten()[:5], torch.zeros(5))


def test_weights_are_read_without_unpickling_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="evil.pth"):
        segmnv3.build_model("lraspp", 3, pretrained_backbone=tmp_path / "evil.pth")


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        segmnv3.build_model("lraspp", 3, pretrained_backbone=tmp_path / "nope.pth")
