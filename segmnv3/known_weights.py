"""The known-weights entry and the built-in table: torchvision's MobileNetV3 weights.

Plain data with no network or cache code, so the inference path and the registry
(:mod:`segmnv3.hub`) share one definition.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

# torchvision's 21 classes for its COCO_WITH_VOC_LABELS weights (background + the 20 VOC
# classes) and the VOC palette.
VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip
VOC_PALETTE = [
    ((i >> 0 & 1) << 7 | (i >> 3 & 1) << 6, (i >> 1 & 1) << 7 | (i >> 4 & 1) << 6,
     (i >> 2 & 1) << 7) for i in range(21)
]  # fmt: skip


@dataclass(frozen=True)
class KnownWeights:
    """One entry of the registry. ``architecture`` holds ``build_model`` options (for a
    backbone: ``{"backbone": ...}``); ``config`` the config a segmentation entry is
    evaluated with (dataset, eval resize)."""

    name: str
    url: str
    task: str  # "segmentation" or "backbone"
    architecture: dict
    classes: tuple = ()
    palette: tuple = ()
    resize: int | None = None  # shorter side at inference
    metrics: dict = field(default_factory=dict)
    num_params: int = 0
    source: str = ""
    license: str = ""
    config: dict = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name

    @property
    def sha256_prefix(self) -> str:
        """The hex digits after the last ``-`` of the file name (torchvision's convention)."""
        found = re.search(r"-([0-9a-f]{6,64})\.[A-Za-z0-9]+$", self.filename)
        if not found:
            raise ValueError(f"weights {self.name!r}: {self.filename} carries no SHA-256 prefix")
        return found.group(1)

    def card(self) -> dict:
        return asdict(self)


_TV = "https://download.pytorch.org/models/"
_COCO_VOC = {"dataset": "COCO val2017, VOC classes"}
# torchvision evaluates its segmentation weights with the shorter side resized to 520. One
# rule for them: by name, and as a file loaded by path (any torchvision-format state dict).
TORCHVISION_RESIZE = 520
_SEG_CONFIG = {"data": {"dataset": "coco", "options": {"categories": "voc"},
                        "eval_resize": TORCHVISION_RESIZE}}  # fmt: skip


def torchvision_segmentation_config(head: str, reduced_tail: bool, aux: bool) -> dict:
    """The config (as a dict) a torchvision segmentation model is evaluated with."""
    return {**_SEG_CONFIG, "model": {"head": head, "reduced_tail": reduced_tail, "aux": aux}}


_TV_SOURCE, _TV_LICENSE = "torchvision 0.29 (PyTorch)", "BSD-3-Clause"


def _torchvision_segmentation(head: str, url: str, aux: bool, miou: float, params: int):
    return KnownWeights(
        name=f"{head}_mobilenet_v3_large.coco_with_voc_labels_v1",
        url=_TV + url,
        task="segmentation",
        architecture={"head": head, "num_classes": 21, "reduced_tail": False, "aux": aux},
        classes=tuple(VOC_CLASSES),
        palette=tuple(VOC_PALETTE),
        resize=TORCHVISION_RESIZE,
        metrics={**_COCO_VOC, "mIoU": miou, "pixel_acc": 91.2},
        num_params=params,
        source=_TV_SOURCE,
        license=_TV_LICENSE,
        config=torchvision_segmentation_config(head, False, aux),
    )


def _torchvision_backbone(arch: str, version: str, url: str, acc1: float, params: int):
    return KnownWeights(
        name=f"{arch}.imagenet1k_{version}",
        url=_TV + url,
        task="backbone",
        architecture={"backbone": arch},
        resize=None,
        metrics={"dataset": "ImageNet-1K val", "acc@1": acc1},
        num_params=params,
        source=_TV_SOURCE,
        license=_TV_LICENSE,
    )


WEIGHTS: dict[str, KnownWeights] = {
    w.name: w
    for w in (
        _torchvision_segmentation(
            "lraspp", "lraspp_mobilenet_v3_large-d234d4ea.pth", False, 57.9, 3_221_538
        ),  # fmt: skip
        _torchvision_segmentation(
            "deeplabv3", "deeplabv3_mobilenet_v3_large-fc3c493d.pth", True, 60.3, 11_029_328
        ),  # fmt: skip
        _torchvision_backbone(
            "mobilenet_v3_large", "v1", "mobilenet_v3_large-8738ca79.pth", 74.042, 5_483_032
        ),  # fmt: skip
        _torchvision_backbone(
            "mobilenet_v3_large", "v2", "mobilenet_v3_large-5c1a4163.pth", 75.274, 5_483_032
        ),  # fmt: skip
        _torchvision_backbone(
            "mobilenet_v3_small", "v1", "mobilenet_v3_small-047dcff4.pth", 67.668, 2_542_856
        ),  # fmt: skip
    )
}
BUILTIN_NAMES = frozenset(WEIGHTS)
