"""MobileNetV3 backbones (Large and Small) that return stride-8 and stride-16 features.

The layer order and module names follow torchvision's ``mobilenet_v3_*().features`` so that
its checkpoints load unchanged: child ``N`` here is ``features.N`` there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without dropping more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _bn(channels: int) -> nn.BatchNorm2d:
    # The TensorFlow values the paper trained with; torchvision uses the same. The momentum
    # is changed after construction by MobileNetV3Backbone(bn_momentum=...).
    return nn.BatchNorm2d(channels, eps=0.001, momentum=0.01)


class ConvBNAct(nn.Sequential):
    """Conv → BN → optional activation; children ``0``, ``1``, ``2`` as in torchvision."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            _bn(out_channels),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel gate: global pool → 1×1 (ReLU) → 1×1 → hard-sigmoid, times the input."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)  # modules, so that exports can swap them (no
        self.gate = nn.Hardsigmoid()  # weights: the state dict is torchvision's)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.pool(x)
        scale = torch.relu(self.fc1(scale))
        scale = self.gate(self.fc2(scale))
        return x * scale


@dataclass(frozen=True)
class BlockSpec:
    """One row of the paper's architecture table."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    use_hs: bool
    stride: int
    dilation: int = 1


class InvertedResidual(nn.Module):
    """Expand (1×1) → depthwise (k×k) → SE → project (1×1, linear), with a skip if shapes match."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        act = nn.Hardswish if spec.use_hs else nn.ReLU
        # A dilated block keeps its resolution: the stride turns into dilation.
        stride = 1 if spec.dilation > 1 else spec.stride
        self.use_skip = stride == 1 and spec.in_channels == spec.out_channels
        layers: list[nn.Module] = []
        if spec.expanded != spec.in_channels:
            layers.append(ConvBNAct(spec.in_channels, spec.expanded, 1, activation=act))
        layers.append(
            ConvBNAct(
                spec.expanded,
                spec.expanded,
                spec.kernel,
                stride,
                spec.dilation,
                groups=spec.expanded,
                activation=act,
            )
        )
        if spec.use_se:
            layers.append(SqueezeExcite(spec.expanded, make_divisible(spec.expanded // 4)))
        layers.append(ConvBNAct(spec.expanded, spec.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = spec.out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.use_skip else out


# (in, kernel, expanded, out, SE, h-swish, stride); the last stage's channels are halved by
# ``reduced_tail`` and its stride becomes dilation with ``dilated``. From the paper's Tables 1-2.
_LARGE = [
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
]
_SMALL = [
    (16, 3, 16, 16, True, False, 2),
    (16, 3, 72, 24, False, False, 2),
    (24, 3, 88, 24, False, False, 1),
    (24, 5, 96, 40, True, True, 2),
    (40, 5, 240, 40, True, True, 1),
    (40, 5, 240, 40, True, True, 1),
    (40, 5, 120, 48, True, True, 1),
    (48, 5, 144, 48, True, True, 1),
    (48, 5, 288, 96, True, True, 2),
    (96, 5, 576, 96, True, True, 1),
    (96, 5, 576, 96, True, True, 1),
]
# Index of the first block of the last stage, per architecture.
_TABLES = {"mobilenet_v3_large": (_LARGE, 12), "mobilenet_v3_small": (_SMALL, 8)}


def _block_specs(
    arch: str, width_mult: float, reduced_tail: bool, dilated: bool
) -> list[BlockSpec]:
    if arch not in _TABLES:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {sorted(_TABLES)}")
    table, tail_start = _TABLES[arch]
    tail_div = 2 if reduced_tail else 1
    specs = []
    for i, (cin, k, exp, cout, se, hs, stride) in enumerate(table):
        dilation = 1
        if i >= tail_start:
            # The first tail block takes the unreduced input; everything after it is halved.
            cin = cin if i == tail_start else cin // tail_div
            exp, cout = exp // tail_div, cout // tail_div
            dilation = 2 if dilated else 1
        specs.append(
            BlockSpec(
                make_divisible(cin * width_mult),
                k,
                make_divisible(exp * width_mult),
                make_divisible(cout * width_mult),
                se,
                hs,
                stride,
                dilation,
            )
        )
    return specs


class MobileNetV3Backbone(nn.Sequential):
    """MobileNetV3 feature extractor returning ``{"low": stride 8, "high": stride 16}``.

    Children ``0 … N`` are the stem, the inverted-residual blocks and the final 1×1 conv, in
    torchvision's order. ``low`` is the output of the first block at stride 8 (40 channels for
    Large); ``high`` is the final conv's output (960, or 480 with ``reduced_tail``), at stride 16
    when ``dilated`` and 32 otherwise. ``out_channels`` gives both channel counts.

    BN uses eps 0.001 and momentum 0.01 (the paper's TensorFlow values, meant for long
    schedules); a short run wants a larger ``bn_momentum`` so that the running statistics
    used at evaluation catch up with the weights.
    """

    def __init__(
        self,
        arch: str = "mobilenet_v3_large",
        width_mult: float = 1.0,
        reduced_tail: bool = True,
        dilated: bool = True,
        bn_momentum: float = 0.01,
    ) -> None:
        specs = _block_specs(arch, width_mult, reduced_tail, dilated)
        stem_channels = specs[0].in_channels
        last_in = specs[-1].out_channels
        layers: list[nn.Module] = [
            ConvBNAct(3, stem_channels, 3, stride=2, activation=nn.Hardswish)
        ]
        layers += [InvertedResidual(spec) for spec in specs]
        layers.append(ConvBNAct(last_in, 6 * last_in, 1, activation=nn.Hardswish))
        super().__init__(*layers)

        # "low" is the output of the block that brings the features to stride 8 (the stem
        # is stride 2; child i is specs[i - 1]).
        stride, self.low_index = 2, 0
        for i, spec in enumerate(specs, start=1):
            stride *= spec.stride
            if stride == 8:
                self.low_index = i
                break
        self.out_channels = {"low": specs[self.low_index - 1].out_channels, "high": 6 * last_in}
        self.output_stride = 16 if dilated else 32
        self._init_weights()
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = bn_momentum

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
        low = x
        for i, layer in enumerate(self):
            x = layer(x)
            if i == self.low_index:
                low = x
        return {"low": low, "high": x}
