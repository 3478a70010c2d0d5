"""segmnv3: fast semantic segmentation with MobileNetV3 (LR-ASPP, DeepLabV3, FCN).

import segmnv3
model = segmnv3.build_model("lraspp", num_classes=19)
seg = segmnv3.Segmenter.from_checkpoint("runs/demo/best.pt")
mask = seg.predict("street.png")
"""

from .data import DATASETS, build_dataset
from .inference import Segmenter
from .metrics import ConfusionMatrix
from .models import HEADS, build_model

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "HEADS",
    "ConfusionMatrix",
    "Segmenter",
    "__version__",
    "build_dataset",
    "build_model",
]
