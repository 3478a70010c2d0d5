"""Procedurally generated scenes: the built-in sample data, no download needed.

Each scene is a textured background with a few objects of four kinds. A class is told by its
shape *and* its texture, never by its colour (colours are random per object), so a model has
to learn something real. The same ``seed`` gives the same scenes; each item is generated on
demand from ``(seed, split, index)``, so workers need no shared state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from .base import SegmentationDataset

CLASSES = ["background", "disc", "box", "triangle", "star"]
PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200)]
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float32)


def _two_tone(pattern: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a, b = _colour(rng), _colour(rng)
    # Keep the two tones apart so the texture is visible whatever colours are drawn.
    if np.abs(a - b).sum() < 150:
        b = 255 - a
    return pattern[..., None] * a + (1 - pattern[..., None]) * b


def _stripes(h, w, rng):
    yy, xx = _grid(h, w)
    period = rng.uniform(5, 9)
    angle = rng.uniform(np.pi / 8, 3 * np.pi / 8) * rng.choice([-1, 1])
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
    return _two_tone((phase % 1.0 < 0.5).astype(np.float32), rng)


def _checker(h, w, rng):
    yy, xx = _grid(h, w)
    cell = rng.uniform(4, 7)
    return _two_tone((((yy // cell) + (xx // cell)) % 2).astype(np.float32), rng)


def _dots(h, w, rng):
    dots = (rng.random((h, w)) < 0.25).astype(np.float32)
    return _two_tone(dots, rng)


def _grid_lines(h, w, rng):
    yy, xx = _grid(h, w)
    cell = rng.uniform(5, 8)
    lines = ((yy % cell) < 1.6) | ((xx % cell) < 1.6)
    return _two_tone(lines.astype(np.float32), rng)


def _background(h, w, rng):
    yy, xx = _grid(h, w)
    a, b = _colour(rng), _colour(rng)
    t = (xx / max(w - 1, 1) * rng.uniform(-1, 1) + yy / max(h - 1, 1) * rng.uniform(-1, 1)) / 2
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    blur = cv2.GaussianBlur(rng.normal(0, 25, size=(h, w)).astype(np.float32), (0, 0), 3)
    return t[..., None] * a + (1 - t[..., None]) * b + blur[..., None]


def _polygon(kind: int, cx: float, cy: float, r: float, rng) -> np.ndarray:
    rot = rng.uniform(0, 2 * np.pi)
    if kind == 2:  # box
        angles = rot + np.arange(4) * np.pi / 2
        radii = np.full(4, r)
    elif kind == 3:  # triangle
        angles = rot + np.arange(3) * 2 * np.pi / 3
        radii = np.full(3, r * 1.15)
    else:  # star, five points
        angles = rot + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r * 1.2, r * 0.55)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    return np.round(pts).astype(np.int32)


_TEXTURES = {1: _stripes, 2: _checker, 3: _dots, 4: _grid_lines}


def generate_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    max_objects: int = 5,
    kind_weights: list[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
    """One scene: RGB uint8 image, uint8 class mask and the visible mask of each object.

    Objects drawn later occlude earlier ones; ``instances`` is ``[(class id, bool mask)]``
    holding only the visible pixels, empty ones removed. ``kind_weights`` (one per object
    class, disc … star) makes some classes rarer than others; by default all are equally
    likely.
    """
    probs = None
    if kind_weights is not None:
        w = np.asarray(kind_weights, np.float64)
        if w.shape != (len(CLASSES) - 1,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"kind_weights {kind_weights!r}: give {len(CLASSES) - 1} weights "
                             f">= 0 (for {', '.join(CLASSES[1:])})")  # fmt: skip
        probs = w / w.sum()
    image = _background(height, width, rng)
    mask = np.zeros((height, width), np.uint8)
    owner = np.full((height, width), -1, np.int32)
    kinds = []
    short = min(height, width)
    for obj in range(int(rng.integers(2, max_objects + 1))):
        if probs is None:
            kind = int(rng.integers(1, len(CLASSES)))
        else:
            kind = 1 + int(rng.choice(len(probs), p=probs))
        r = rng.uniform(0.14, 0.26) * short
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        shape = np.zeros((height, width), np.uint8)
        if kind == 1:
            cv2.circle(shape, (round(cx), round(cy)), round(r), 1, thickness=-1)
        else:
            cv2.fillPoly(shape, [_polygon(kind, cx, cy, r, rng)], 1)
        inside = shape.astype(bool)
        image[inside] = _TEXTURES[kind](height, width, rng)[inside]
        mask[inside] = kind
        owner[inside] = obj
        kinds.append(kind)
    image = np.clip(image + rng.normal(0, 4, size=image.shape), 0, 255).astype(np.uint8)
    instances = [(k, owner == i) for i, k in enumerate(kinds) if (owner == i).any()]
    return image, mask, instances


class SyntheticSegmentation(SegmentationDataset):
    """Generated scenes with 5 classes (``CLASSES``), deterministic for a given seed.

    ``split`` picks an independent stream of scenes, so "train" and "val" never share one.
    ``num_samples`` defaults to 512 for train and 64 otherwise (the demo's sizes).
    """

    classes = CLASSES
    palette = PALETTE
    num_classes = len(CLASSES)

    def __init__(
        self,
        split: str = "train",
        num_samples: int | None = None,
        size: tuple[int, int] | int = (128, 128),
        seed: int = 0,
        transforms: Callable | None = None,
        root: str | Path | None = None,  # unused: the scenes are drawn, not read
        kind_weights: list[float] | None = None,
    ) -> None:
        if split not in _SPLIT_CODES:
            raise ValueError(f"synthetic split {split!r}; choose one of {sorted(_SPLIT_CODES)}")
        if num_samples is None:
            num_samples = 512 if split == "train" else 64
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if min(self.size) < 16:
            raise ValueError(f"synthetic size {self.size} is too small (>= 16 px)")
        self.split, self.num_samples, self.seed = split, num_samples, seed
        self.transforms, self.kind_weights = transforms, kind_weights
        if kind_weights is not None:
            generate_scene(np.random.default_rng(0), 16, 16, 2, kind_weights)  # checks them

    @staticmethod
    def splits(root=None) -> list[str]:
        return ["train", "val"]

    def __len__(self) -> int:
        return self.num_samples

    def filename(self, index: int) -> str:
        return f"{self.split}_{index:06d}"

    def scene(self, index: int):
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        rng = np.random.default_rng([self.seed, _SPLIT_CODES[self.split], index])
        return generate_scene(rng, *self.size, kind_weights=self.kind_weights)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask, _ = self.scene(index)
        return image, mask
