"""segmnv3: fast semantic segmentation with MobileNetV3 (LR-ASPP, DeepLabV3, FCN).

import segmnv3
model = segmnv3.build_model("lraspp", num_classes=19)
seg = segmnv3.Segmenter.from_checkpoint("runs/demo/best.pt")
seg = segmnv3.Segmenter.from_pretrained("lraspp_mobilenet_v3_large.coco_with_voc_labels_v1")
mask = seg.predict("street.png")

The public names are imported when first used, so that ``import segmnv3.models`` (or
``segmnv3.metrics``) does not pull in the data stack (albumentations, pycocotools) or the
inference runtimes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "DATASETS": "segmnv3.data",
    "build_dataset": "segmnv3.data",
    "Segmenter": "segmnv3.inference",
    "ConfusionMatrix": "segmnv3.metrics",
    "HEADS": "segmnv3.models",
    "build_model": "segmnv3.models",
    "list_weights": "segmnv3.hub",
    "register_weights": "segmnv3.hub",
}

__all__ = [
    "DATASETS",
    "HEADS",
    "ConfusionMatrix",
    "Segmenter",
    "__version__",
    "build_dataset",
    "build_model",
    "list_weights",
    "register_weights",
]

if TYPE_CHECKING:
    from .data import DATASETS, build_dataset
    from .hub import list_weights, register_weights
    from .inference import Segmenter
    from .metrics import ConfusionMatrix
    from .models import HEADS, build_model


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'segmnv3' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
