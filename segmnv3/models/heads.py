"""Segmentation heads. Each is built as ``Head(low_channels, high_channels, num_classes, ...)``
and maps the backbone's ``{"low", "high"}`` feature dict to logits at the feature resolution.

Module names match torchvision's heads so that its checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

# The paper's LR-ASPP pooling: a 49×49 average pool with stride (16, 20), chosen for
# 1024×2048 Cityscapes inputs, whose stride-16 features are 64×128.
_PAPER_FEATURES = (64, 128)
_PAPER_KERNEL = (49, 49)
_PAPER_STRIDE = (16, 20)


def _conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> list[nn.Module]:
    padding = (kernel - 1) // 2 * dilation
    return [
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class LRASPPHead(nn.Module):
    """Lite R-ASPP (MobileNetV3 paper, Fig. 10).

    A 1×1 conv + BN + ReLU on the high features, gated by global pooling → 1×1 conv → sigmoid,
    upsampled to the low features and classified, plus a 1×1 classifier on the low features.
    ``pool="global"`` (default, as torchvision) pools the whole map; ``pool="paper"`` uses the
    paper's 49×49 / stride (16, 20) average pool, scaled to the actual feature size.
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        num_classes: int,
        inter_channels: int = 128,
        pool: str = "global",
    ) -> None:
        super().__init__()
        if pool not in ("global", "paper"):
            raise ValueError(f"LRASPPHead pool={pool!r}; choose 'global' or 'paper'")
        self.pool = pool
        self.cbr = nn.Sequential(*_conv_bn_relu(high_channels, inter_channels))
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(high_channels, inter_channels, 1, bias=False),
            nn.Sigmoid(),
        )
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter_channels, num_classes, 1)

    def _gate(self, high: Tensor) -> Tensor:
        if self.pool == "global":
            return self.scale(high)
        size = high.shape[-2:]
        # Scale kernel and stride with the feature size so any input works; never exceed it.
        kernel = [
            max(1, min(s, round(k * s / ref)))
            for s, k, ref in zip(size, _PAPER_KERNEL, _PAPER_FEATURES, strict=True)
        ]
        stride = [
            max(1, round(st * s / ref))
            for s, st, ref in zip(size, _PAPER_STRIDE, _PAPER_FEATURES, strict=True)
        ]
        pooled = F.avg_pool2d(high, kernel, stride)
        gate = torch.sigmoid(self.scale[1](pooled))
        return F.interpolate(gate, size=size, mode="bilinear", align_corners=False)

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        low, high = features["low"], features["high"]
        x = self.cbr(high) * self._gate(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.low_classifier(low) + self.high_classifier(x)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1×1 branch, one 3×3 branch per rate, image pooling."""

    def __init__(self, in_channels: int, rates: tuple[int, ...], channels: int = 256) -> None:
        super().__init__()
        branches = [nn.Sequential(*_conv_bn_relu(in_channels, channels))]
        branches += [nn.Sequential(*_conv_bn_relu(in_channels, channels, 3, r)) for r in rates]
        branches.append(
            nn.Sequential(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(in_channels, channels))
        )
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            *_conv_bn_relu(len(branches) * channels, channels), nn.Dropout(0.5)
        )

    def forward(self, x: Tensor) -> Tensor:
        outs = [branch(x) for branch in self.convs[:-1]]
        pool = self.convs[-1]
        if self.training and x.shape[0] == 1:
            # One image gives BN a single value per channel after global pooling, from which
            # no batch statistics can be taken: use the running ones for this branch.
            y = pool[1](pool[0](x))
            bn = pool[2]
            y = F.batch_norm(
                y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
            )
            pooled = torch.relu(y)
        else:
            pooled = pool(x)
        outs.append(pooled.expand(-1, -1, x.shape[-2], x.shape[-1]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3Head(nn.Sequential):
    """DeepLabV3 on the high features: ASPP → 3×3 conv + BN + ReLU → 1×1 classifier."""

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        num_classes: int,
        atrous_rates: tuple[int, ...] = (12, 24, 36),
        channels: int = 256,
    ) -> None:
        super().__init__(
            ASPP(high_channels, tuple(atrous_rates), channels),
            *_conv_bn_relu(channels, channels, 3),
            nn.Conv2d(channels, num_classes, 1),
        )

    def forward(self, features: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        x = features["high"]
        for layer in self:
            x = layer(x)
        return x


class FCNHead(nn.Sequential):
    """FCN: 3×3 conv to in/4 channels + BN + ReLU, dropout 0.1, 1×1 classifier.

    ``in_feature`` picks the input: ``"high"`` for the main head, ``"low"`` for the auxiliary one.
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        num_classes: int,
        in_feature: str = "high",
    ) -> None:
        if in_feature not in ("low", "high"):
            raise ValueError(f"FCNHead in_feature={in_feature!r}; choose 'low' or 'high'")
        in_channels = high_channels if in_feature == "high" else low_channels
        inter = in_channels // 4
        super().__init__(
            *_conv_bn_relu(in_channels, inter, 3),
            nn.Dropout(0.1),
            nn.Conv2d(inter, num_classes, 1),
        )
        self.in_feature = in_feature

    def forward(self, features: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        x = features[self.in_feature]
        for layer in self:
            x = layer(x)
        return x
