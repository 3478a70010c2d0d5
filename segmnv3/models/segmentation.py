"""The segmentation model (backbone → head → upsample), the ``HEADS`` registry and build_model."""

from __future__ import annotations

import inspect
from pathlib import Path

from torch import Tensor, nn
from torch.nn import functional as F

from .. import hub
from .heads import DeepLabV3Head, FCNHead, LRASPPHead
from .mobilenetv3 import MobileNetV3Backbone
from .weights import load_backbone_weights, load_file, state_dict_of, torchvision_model_options

HEADS: dict[str, type[nn.Module]] = {
    "lraspp": LRASPPHead,
    "deeplabv3": DeepLabV3Head,
    "fcn": FCNHead,
}

BACKBONES = ("mobilenet_v3_large", "mobilenet_v3_small")


class SegmentationModel(nn.Module):
    """``model(x)`` → ``{"out": N×K×H×W logits}`` (plus ``"aux"`` with an auxiliary head).

    The logits are bilinearly upsampled to the input's size; ``model(x, upsample=False)``
    leaves them at the head's output stride (for :func:`segmnv3.postprocess.upsample_argmax`).
    """

    def __init__(
        self, backbone: nn.Module, classifier: nn.Module, aux_classifier: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier
        self.aux_classifier = aux_classifier

    def forward(self, x: Tensor, upsample: bool = True) -> dict[str, Tensor]:
        size = x.shape[-2:] if upsample else None
        features = self.backbone(x)
        out = {"out": _upsample(self.classifier(features), size)}
        if self.aux_classifier is not None:
            out["aux"] = _upsample(self.aux_classifier(features), size)
        return out


def _upsample(x: Tensor, size) -> Tensor:
    if size is None:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _check_head_options(head: str, options: dict) -> None:
    """An unknown head option names itself and the valid ones (model.head_options)."""
    fixed = {"self", "low_channels", "high_channels", "num_classes"}
    valid = sorted(set(inspect.signature(HEADS[head]).parameters) - fixed)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"head {head!r}: unknown option {', '.join(unknown)} (model.head_options); "
            f"valid options: {', '.join(valid) or 'none'}"
        )


def build_model(
    head: str | None = None,
    num_classes: int | None = None,
    *,
    backbone: str = "mobilenet_v3_large",
    reduced_tail: bool = True,
    dilated: bool = True,
    width_mult: float = 1.0,
    aux: bool = False,
    pretrained_backbone: str | Path | None = None,
    bn_momentum: float = 0.01,
    weights: str | Path | None = None,
    **head_options,
) -> SegmentationModel:
    """Build a MobileNetV3 segmentation model.

    Args:
        head: a key of ``HEADS``: ``"lraspp"``, ``"deeplabv3"`` or ``"fcn"``.
        num_classes: number of output classes (logit channels).
        backbone: ``"mobilenet_v3_large"`` or ``"mobilenet_v3_small"``.
        reduced_tail: halve the last stage's channels (the paper's segmentation setting).
        dilated: the last stage uses dilation instead of stride (output stride 16, not 32).
        width_mult: channel multiplier; channels are rounded to multiples of 8.
        aux: add an auxiliary FCN head on the stride-8 features (``"aux"`` output).
        pretrained_backbone: ImageNet weights for the backbone: a registry name
            (``segmnv3.hub``; ``"imagenet"`` is ``<backbone>.imagenet1k_v1``, torchvision's
            default) or a local torchvision ``mobilenet_v3_*`` state-dict file.
        bn_momentum: the backbone's BN momentum (0.01 as in the paper; larger for short runs).
        weights: a whole trained model: a registry name (e.g.
            ``"lraspp_mobilenet_v3_large.coco_with_voc_labels_v1"``) or a torchvision
            segmentation state-dict file. The architecture comes from the weights; ``head`` and
            ``num_classes``, when given, must match it.
        head_options: passed to the head's constructor (e.g. ``pool="paper"`` for LR-ASPP).

    With ``reduced_tail=False`` the state-dict keys equal torchvision's, so its
    ``lraspp_mobilenet_v3_large`` / ``deeplabv3_mobilenet_v3_large`` checkpoints load strictly.
    """
    if weights is not None:
        return _pretrained_model(weights, head, num_classes)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {sorted(HEADS)}")
    if num_classes is None or num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    _check_head_options(head, head_options)
    body = MobileNetV3Backbone(backbone, width_mult, reduced_tail, dilated, bn_momentum)
    low, high = body.out_channels["low"], body.out_channels["high"]
    classifier = HEADS[head](low, high, num_classes, **head_options)
    aux_classifier = FCNHead(low, high, num_classes, in_feature="low") if aux else None
    model = SegmentationModel(body, classifier, aux_classifier)
    if pretrained_backbone is not None:
        if pretrained_backbone == "imagenet":
            pretrained_backbone = f"{backbone}.imagenet1k_v1"
        load_backbone_weights(model.backbone, hub.weights_file(pretrained_backbone))
    return model


def _pretrained_model(weights: str | Path, head: str | None, num_classes: int | None):
    """The model a registry entry or a torchvision segmentation file describes, loaded."""
    path = hub.weights_file(weights)
    state = state_dict_of(load_file(path), path)
    if Path(weights).is_file():
        options = torchvision_model_options(state)
    else:
        entry = hub.get_weights(str(weights))
        if entry.task != "segmentation":
            raise ValueError(f"{weights!r} are backbone weights: use pretrained_backbone=")
        options = dict(entry.architecture)
    for key, given in (("head", head), ("num_classes", num_classes)):
        if given is not None and given != options[key]:
            raise ValueError(
                f"weights {str(weights)!r} are for {key}={options[key]!r}, not {given!r}"
            )
    model = build_model(**options)
    model.load_state_dict(state, strict=True)
    return model
