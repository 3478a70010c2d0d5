"""The preprocessing facts a model's input depends on, in one small object that travels with
weights, checkpoints, ONNX metadata and exports (like torchvision's ``Weights.transforms``
or timm's ``pretrained_cfg``): the shorter side's size, the mean and the std. Also the one
label value that means "ignore" everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255  # in masks, losses, metrics, crop and batch padding


def shorter_side_size(height: int, width: int, side: int) -> tuple[int, int]:
    """(height, width) scaled so that the shorter side is ``side`` (rounded, at least 1)."""
    s = side / min(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


@dataclass(frozen=True)
class Preprocessing:
    """RGB uint8 H×W×3 → the model's input: the shorter side resized to ``resize`` (None:
    the image's own size), then ``(x / 255 - mean) / std`` per channel, as 3×H×W float32.
    Evaluation, :class:`~segmnv3.inference.Segmenter` and every export use this one rule."""

    resize: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"preprocessing: mean {self.mean} and std {self.std} need 3 values, "
                             "std > 0")  # fmt: skip
        if self.resize is not None and (not isinstance(self.resize, int) or self.resize < 1):
            raise ValueError(f"preprocessing: resize {self.resize!r} is not a size > 0 or None")

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        """From :meth:`to_dict`'s keys; missing ones take the defaults (ImageNet statistics)."""
        return cls(data.get("resize"), tuple(data.get("mean", IMAGENET_MEAN)),
                   tuple(data.get("std", IMAGENET_STD)))  # fmt: skip

    def to_dict(self) -> dict:
        return {"resize": self.resize, "mean": list(self.mean), "std": list(self.std)}

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """The network's input size for an image of ``height`` × ``width``."""
        return (height, width) if not self.resize else shorter_side_size(height, width, self.resize)

    def resize_image(self, rgb: np.ndarray) -> np.ndarray:
        h, w = self.input_size(*rgb.shape[:2])
        if (h, w) == rgb.shape[:2]:
            return rgb
        return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)

    def resize_mask(self, mask: np.ndarray) -> np.ndarray:
        """A mask resized like its image: nearest neighbour, so ids stay ids."""
        h, w = self.input_size(*mask.shape[:2])
        if (h, w) == mask.shape[:2]:
            return mask
        return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)

    @cached_property
    def _scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        std, mean = np.asarray(self.std, np.float64), np.asarray(self.mean, np.float64)
        scale = torch.tensor(1.0 / (255.0 * std), dtype=torch.float32).view(3, 1, 1)
        return scale, torch.tensor(-mean / std, dtype=torch.float32).view(3, 1, 1)

    def normalize(self, rgb: np.ndarray) -> torch.Tensor:
        """HWC uint8 → CHW float32, one fused multiply-add ``x * scale + shift`` (PyTorch's
        threads; a tenth of the time of the same arithmetic in NumPy at 1024×512)."""
        scale, shift = self._scale_shift
        if not rgb.flags.writeable:  # e.g. np.asarray of a PIL image; torch wants writable
            rgb = rgb.copy()
        out = torch.empty((3, *rgb.shape[:2]), dtype=torch.float32)
        return torch.addcmul(shift, torch.from_numpy(rgb).permute(2, 0, 1), scale, out=out)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """The model input of one image, 3×H×W float32 (resized, normalised)."""
        return self.normalize(self.resize_image(rgb)).numpy()


def as_preprocessing(resize=None, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> Preprocessing:  # fmt: skip
    """A :class:`Preprocessing` from loose values (an entry's, a file's metadata)."""
    return Preprocessing(None if resize is None else int(resize), tuple(mean), tuple(std))
