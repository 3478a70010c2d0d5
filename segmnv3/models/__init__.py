"""MobileNetV3 backbones, segmentation heads and the model builder."""

from .complexity import count_macs, count_parameters
from .heads import ASPP, DeepLabV3Head, FCNHead, LRASPPHead
from .mobilenetv3 import MobileNetV3Backbone
from .segmentation import BACKBONES, HEADS, SegmentationModel, build_model
from .weights import load_backbone_weights, load_file, state_dict_of, torchvision_model_options

__all__ = [
    "ASPP",
    "BACKBONES",
    "HEADS",
    "DeepLabV3Head",
    "FCNHead",
    "LRASPPHead",
    "MobileNetV3Backbone",
    "SegmentationModel",
    "build_model",
    "count_macs",
    "count_parameters",
    "load_backbone_weights",
    "load_file",
    "state_dict_of",
    "torchvision_model_options",
]
