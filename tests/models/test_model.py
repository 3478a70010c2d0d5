import pytest
import torch

import segmnv3
from segmnv3.models import HEADS, LRASPPHead, count_macs, count_parameters


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("size", [(32, 32), (97, 131), (64, 48)])
def test_output_is_logits_at_input_size(head, size):
    model = segmnv3.build_model(head, num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert set(out) == {"out"}
    assert out["out"].shape == (1, 5, *size)
    assert torch.isfinite(out["out"]).all()


@pytest.mark.parametrize("head", ["deeplabv3", "fcn"])
def test_aux_output(head):
    model = segmnv3.build_model(head, num_classes=3, aux=True)
    out = model(torch.randn(2, 3, 65, 70))
    assert out["aux"].shape == out["out"].shape == (2, 3, 65, 70)
    (out["out"].sum() + out["aux"].sum()).backward()
    assert model.aux_classifier[0].weight.grad is not None


@pytest.mark.parametrize("head", sorted(HEADS))
def test_batch_of_one_trains(head):
    # BN in train mode with N=1 still works because the feature maps have >1 pixel.
    model = segmnv3.build_model(head, num_classes=4, backbone="mobilenet_v3_small").train()
    out = model(torch.randn(1, 3, 64, 64))["out"]
    out.mean().backward()
    assert out.shape == (1, 4, 64, 64)


def test_unknown_head_lists_choices():
    with pytest.raises(ValueError, match=r"deeplabv3.*fcn.*lraspp"):
        segmnv3.build_model("unet", 3)


def test_head_options_are_passed():
    model = segmnv3.build_model("deeplabv3", 3, atrous_rates=(6, 12, 18))
    assert [b[0].dilation for b in model.classifier[0].convs[1:4]] == [(6, 6), (12, 12), (18, 18)]
    with pytest.raises(ValueError, match="head 'lraspp': unknown option atrous_rates .*valid "
                       "options: inter_channels, pool"):  # fmt: skip
        segmnv3.build_model("lraspp", 3, atrous_rates=(6, 12, 18))


@pytest.mark.parametrize("size", [(32, 32), (97, 131), (256, 512), (1024, 2048)])
def test_lraspp_paper_pool_any_size(size):
    head = LRASPPHead(40, 480, 3, pool="paper").eval()
    hs, ws = -(-size[0] // 16), -(-size[1] // 16)
    feats = {"low": torch.randn(1, 40, 2 * hs, 2 * ws), "high": torch.randn(1, 480, hs, ws)}
    with torch.no_grad():
        out = head(feats)
    assert out.shape == (1, 3, 2 * hs, 2 * ws)


def test_lraspp_paper_pool_differs_from_global_on_large_inputs():
    head = LRASPPHead(40, 480, 3, pool="paper").eval()
    feats = {"low": torch.randn(1, 40, 128, 256), "high": torch.randn(1, 480, 64, 128)}
    with torch.no_grad():
        paper = head(feats)
        head.pool = "global"
        glob = head(feats)
    assert not torch.allclose(paper, glob)


def test_pool_option_is_checked():
    with pytest.raises(ValueError, match="paper"):
        LRASPPHead(40, 480, 3, pool="max")


def test_macs_counts_a_known_conv():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1))
    assert count_macs(conv, 10, 20) == 8 * 10 * 20 * 3 * 9
    assert count_parameters(conv) == 8 * 3 * 9 + 8


def test_reduced_tail_is_cheaper():
    full = segmnv3.build_model("lraspp", 19, reduced_tail=False)
    reduced = segmnv3.build_model("lraspp", 19)
    assert count_parameters(reduced) < count_parameters(full)
    assert count_macs(reduced, 128, 256) < count_macs(full, 128, 256)


@pytest.mark.parametrize("head, stride", [("lraspp", 8), ("deeplabv3", 16), ("fcn", 16)])
def test_logits_before_upsampling(head, stride):
    model = segmnv3.build_model(head, num_classes=3, aux=head != "lraspp").eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        low, full = model(x, upsample=False), model(x)
    assert low["out"].shape == (1, 3, 96 // stride, 128 // stride)
    assert low["aux"].shape[-2:] == (12, 16) if head != "lraspp" else set(low) == {"out"}
    up = torch.nn.functional.interpolate(low["out"], size=(96, 128), mode="bilinear")
    torch.testing.assert_close(up, full["out"])
