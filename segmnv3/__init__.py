"""segmnv3: fast semantic segmentation with MobileNetV3 (LR-ASPP, DeepLabV3, FCN)."""

from .models import HEADS, build_model

__version__ = "0.1.0"

__all__ = ["HEADS", "build_model", "__version__"]
