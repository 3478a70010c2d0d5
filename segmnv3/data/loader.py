"""DataLoader helpers: worker seeding, OpenCV threads, the padding collate."""

from __future__ import annotations

import random

import cv2
import numpy as np
import torch

from ..preprocess import IGNORE_INDEX


def worker_init(worker_id: int) -> None:
    """Seed numpy, ``random`` and the dataset's augmentations from torch's per-worker seed;
    no OpenCV threads in workers (they would fight the other workers for the same cores).

    albumentations draws from generators of its own, copied into every forked worker: without
    this, all workers would apply the same sequence of augmentations.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    cv2.setNumThreads(0)
    info = torch.utils.data.get_worker_info()
    transforms = getattr(info.dataset, "transforms", None) if info is not None else None
    if hasattr(transforms, "set_random_seed"):
        transforms.set_random_seed(seed)


def pad_collate(batch: list[tuple[torch.Tensor, torch.Tensor]]):
    """Stack ``(image, mask)`` pairs, padding to the largest size: images with 0, masks with
    255 (ignore), at the bottom and right."""
    images, masks = zip(*batch, strict=True)
    height = max(img.shape[-2] for img in images)
    width = max(img.shape[-1] for img in images)
    out_images = images[0].new_zeros((len(images), images[0].shape[0], height, width))
    out_masks = masks[0].new_full((len(masks), height, width), IGNORE_INDEX)
    for i, (img, mask) in enumerate(zip(images, masks, strict=True)):
        out_images[i, :, : img.shape[-2], : img.shape[-1]] = img
        out_masks[i, : mask.shape[-2], : mask.shape[-1]] = mask
    return out_images, out_masks
