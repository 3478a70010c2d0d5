import pytest
import torch

from segmnv3.models import MobileNetV3Backbone
from segmnv3.models.mobilenetv3 import make_divisible


@pytest.mark.parametrize(
    "arch, reduced_tail, low, high",
    [
        ("mobilenet_v3_large", True, 40, 480),
        ("mobilenet_v3_large", False, 40, 960),
        ("mobilenet_v3_small", True, 24, 288),
        ("mobilenet_v3_small", False, 24, 576),
    ],
)
def test_feature_shapes_and_channels(arch, reduced_tail, low, high):
    net = MobileNetV3Backbone(arch, reduced_tail=reduced_tail, dilated=True).eval()
    assert net.out_channels == {"low": low, "high": high}
    with torch.no_grad():
        feats = net(torch.randn(1, 3, 128, 160))
    assert feats["low"].shape == (1, low, 16, 20)
    assert feats["high"].shape == (1, high, 8, 10)


def test_not_dilated_is_stride_32():
    net = MobileNetV3Backbone(dilated=False).eval()
    with torch.no_grad():
        feats = net(torch.randn(1, 3, 128, 128))
    assert feats["high"].shape[-2:] == (4, 4)
    assert net.output_stride == 32


def test_large_matches_the_paper_table():
    net = MobileNetV3Backbone(reduced_tail=False, dilated=False)
    blocks = list(net)[1:-1]
    assert len(blocks) == 15
    # Stem: 16 channels, stride 2, hard-swish.
    assert net[0][0].out_channels == 16 and net[0][0].stride == (2, 2)
    assert isinstance(net[0][2], torch.nn.Hardswish)
    se = [any(type(m).__name__ == "SqueezeExcite" for m in b.modules()) for b in blocks]
    assert se == [False, False, False, True, True, True, False, False, False, False] + [True] * 5
    hs = [any(isinstance(m, torch.nn.Hardswish) for m in b.modules()) for b in blocks]
    assert hs == [False] * 6 + [True] * 9
    assert [b.out_channels for b in blocks] == [16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112,
                                                 160, 160, 160]  # fmt: skip
    assert net[-1][0].out_channels == 960


def test_batchnorm_settings_and_init():
    net = MobileNetV3Backbone()
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bn.eps == 0.001 and bn.momentum == 0.01 for bn in bns)
    assert all(torch.all(bn.weight == 1) and torch.all(bn.bias == 0) for bn in bns)
    conv = net[1].block[0][0]  # depthwise 3×3 of the first block, fan_out = 16·9
    std = conv.weight.std().item()
    assert 0.5 * (2 / (16 * 9)) ** 0.5 < std < 1.5 * (2 / (16 * 9)) ** 0.5


def test_dilated_tail_uses_dilation_not_stride():
    net = MobileNetV3Backbone(dilated=True)
    dw = net[13].block[1][0]
    assert dw.stride == (1, 1) and dw.dilation == (2, 2) and dw.padding == (4, 4)


@pytest.mark.parametrize("mult, expected_stem, expected_high", [(0.5, 8, 480), (0.75, 16, 720)])
def test_width_mult_rounds_to_multiples_of_8(mult, expected_stem, expected_high):
    net = MobileNetV3Backbone(width_mult=mult, reduced_tail=False)
    assert net[0][0].out_channels == expected_stem
    assert net.out_channels["high"] == expected_high
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 1]
    assert all(c.out_channels % 8 == 0 for c in convs if c.out_channels > 3)


def test_make_divisible():
    assert make_divisible(16 * 0.35) == 8
    assert make_divisible(100) == 104
    assert make_divisible(91) == 88
    assert make_divisible(10) == 16  # never less than 90% of the request: 8 < 9 → 16


def test_unknown_backbone_lists_choices():
    with pytest.raises(ValueError, match="mobilenet_v3_large"):
        MobileNetV3Backbone("resnet50")
