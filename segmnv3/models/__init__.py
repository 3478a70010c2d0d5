"""MobileNetV3 backbones, segmentation heads and the model builder."""

from .complexity import count_macs, count_parameters
from .heads import ASPP, DeepLabV3Head, FCNHead, LRASPPHead
from .mobilenetv3 import MobileNetV3Backbone
from .segmentation import BACKBONES, HEADS, SegmentationModel, build_model
from .weights import VOC_CLASSES, load_backbone_weights, load_torchvision_segmentation

__all__ = [
    "ASPP",
    "BACKBONES",
    "HEADS",
    "VOC_CLASSES",
    "DeepLabV3Head",
    "FCNHead",
    "LRASPPHead",
    "MobileNetV3Backbone",
    "SegmentationModel",
    "build_model",
    "count_macs",
    "count_parameters",
    "load_backbone_weights",
    "load_torchvision_segmentation",
]
