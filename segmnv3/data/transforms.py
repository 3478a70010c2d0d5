"""albumentations presets for training and evaluation.

A preset is called as ``preset(image, mask)`` with an RGB uint8 H×W×3 image and a uint8 H×W
mask, and returns a float32 3×H×W normalised tensor and an int64 H×W tensor. Masks are only
ever resized with nearest-neighbour interpolation and padded with 255 (ignore).
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from ..preprocess import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, Preprocessing

__all__ = ["IGNORE_INDEX", "IMAGENET_MEAN", "IMAGENET_STD", "EvalPreset", "Preset",
           "denormalize", "eval_preset", "train_preset"]  # fmt: skip


class Preset:
    """Wraps an ``A.Compose`` into the ``(image, mask) → (tensor, int64 tensor)`` contract."""

    def __init__(self, compose: A.Compose) -> None:
        self.compose = compose

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.compose(image=image, mask=mask)
        return out["image"], torch.as_tensor(out["mask"], dtype=torch.int64)

    def set_random_seed(self, seed: int) -> None:
        """Seed the augmentations (albumentations draws from its own generators)."""
        self.compose.set_random_seed(seed)

    def __repr__(self) -> str:
        return f"Preset({self.compose!r})"


def _hw(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _shorter_side(size: int) -> A.SmallestMaxSize:
    return A.SmallestMaxSize(
        max_size=size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST
    )


def train_preset(
    crop_size: int | tuple[int, int] = 512,
    base_size: int | None = None,
    scale_range: tuple[float, float] = (0.5, 2.0),
    hflip_prob: float = 0.5,
    jitter_prob: float = 0.5,
    jitter: float = 0.2,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> Preset:
    """Random scale, pad to the crop (image 0, mask 255), random crop, flip, jitter, normalise.

    The scale is drawn from ``scale_range`` times ``base_size`` (the shorter side), or times
    the image's own size when ``base_size`` is None (Cityscapes at native 1024×2048).
    """
    crop_h, crop_w = _hw(crop_size)
    low, high = scale_range
    steps: list = []
    if base_size is not None:
        steps.append(_shorter_side(base_size))
    steps += [
        A.RandomScale(
            scale_limit=(low - 1.0, high - 1.0),
            interpolation=cv2.INTER_LINEAR,
            mask_interpolation=cv2.INTER_NEAREST,
            p=1.0,
        ),
        A.PadIfNeeded(
            min_height=crop_h,
            min_width=crop_w,
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=IGNORE_INDEX,
            position="top_left",
        ),
        A.RandomCrop(crop_h, crop_w),
        A.HorizontalFlip(p=hflip_prob),
        A.ColorJitter(
            brightness=jitter, contrast=jitter, saturation=jitter, hue=0.0, p=jitter_prob
        ),
        A.Normalize(mean=mean, std=std, max_pixel_value=255.0),
        ToTensorV2(),
    ]
    return Preset(A.Compose(steps))


class EvalPreset:
    """Evaluation's ``(image, mask) → (tensor, int64 tensor)``: the model's
    :class:`~segmnv3.preprocess.Preprocessing`, the very rule ``Segmenter`` runs, and the mask
    resized with the image (nearest neighbour). Nothing random."""

    def __init__(self, preprocessing: Preprocessing) -> None:
        self.preprocessing = preprocessing

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.preprocessing
        x = p.normalize(p.resize_image(image))
        return x, torch.as_tensor(p.resize_mask(mask), dtype=torch.int64)

    def __repr__(self) -> str:
        return f"EvalPreset({self.preprocessing!r})"


def eval_preset(
    resize: int | None = None,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> EvalPreset:
    """Optional resize of the shorter side to ``resize`` (torchvision's COCO protocol: 520),
    then normalisation. The mask is resized the same way, nearest-neighbour."""
    return EvalPreset(Preprocessing(resize, tuple(mean), tuple(std)))


def denormalize(
    image: torch.Tensor,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> np.ndarray:
    """A normalised 3×H×W tensor → RGB uint8 H×W×3 (for pictures of predictions)."""
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    rgb = (image.float().cpu() * s + m).clamp(0, 1) * 255
    return rgb.round().byte().permute(1, 2, 0).numpy()
