"""Config → datasets and presets (shared by training, evaluation and the tools)."""

from __future__ import annotations

from ..config import Config
from ..data import build_dataset, eval_preset, train_preset


def train_dataset(config: Config):
    """The training split with the config's train preset."""
    d = config.data
    preset = train_preset(
        crop_size=tuple(d.crop_size),
        base_size=d.base_size,
        scale_range=tuple(d.scale_range),
        hflip_prob=d.hflip_prob,
        jitter_prob=d.jitter_prob,
        jitter=d.jitter,
    )
    return build_dataset(d.dataset, d.train_split, root=d.root, transforms=preset, **d.options)


def eval_dataset(config: Config, split: str | None = None, resize: int | None = None):
    """An evaluation split (default ``data.val_split``) with the eval preset; ``resize``
    overrides ``data.eval_resize`` (0 forces native resolution)."""
    d = config.data
    if resize is None:
        resize = d.eval_resize
    options = {**d.options, **d.val_options}
    return build_dataset(
        d.dataset,
        split or d.val_split,
        root=d.root,
        transforms=eval_preset(resize=resize or None),
        **options,
    )
