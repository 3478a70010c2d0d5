"""Run configuration: dataclasses, strict YAML loading and dotted ``key=value`` overrides.

An unknown key anywhere is an error that lists the valid ones; values are type-checked
against the dataclass fields, so a typo fails at start-up rather than hours into a run.

The defaults are the built-in demo: LR-ASPP trained from scratch on synthetic 128×128 scenes,
sized to finish in a few minutes on a 2-core CPU. The Cityscapes and COCO recipes live in
``configs/`` as complete files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .io import write_bytes_atomic
from .schema import ConfigKeyError, ConfigValueError, from_dict


@dataclass
class ModelConfig:
    head: str = "lraspp"
    backbone: str = "mobilenet_v3_large"
    reduced_tail: bool = True
    dilated: bool = True
    width_mult: float = 1.0
    aux: bool = False
    pretrained_backbone: str | None = None  # a local torchvision ImageNet weights file
    weights: str | None = None  # fine-tune from a whole model: registry name, file or best.pt
    bn_momentum: float = 0.1  # backbone BN; the paper's 0.01 suits long schedules only
    head_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    root: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    # The dataset's constructor options, and the ones that differ for val (the synthetic
    # data's own defaults are the demo's: 512 train / 64 val scenes of 128×128).
    options: dict[str, Any] = field(default_factory=dict)
    val_options: dict[str, Any] = field(default_factory=dict)
    crop_size: list[int] = field(default_factory=lambda: [128, 128])
    base_size: int | None = None  # shorter side before random scaling; None: native size
    scale_range: list[float] = field(default_factory=lambda: [0.75, 1.5])
    hflip_prob: float = 0.5
    jitter_prob: float = 0.5
    jitter: float = 0.2
    eval_resize: int | None = None  # shorter side at evaluation; None: native resolution
    num_workers: int = 1


@dataclass
class TrainConfig:
    epochs: int = 16
    batch_size: int = 16
    val_batch_size: int = 1
    lr: float = 0.08
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 4e-5
    warmup_iters: int = 30
    warmup_factor: float = 0.001  # the lr starts at lr * warmup_factor and rises linearly
    poly_power: float = 0.9
    aux_weight: float = 0.5
    backbone_lr_mult: float = 1.0  # the backbone's lr is train.lr times this
    freeze_backbone_epochs: int = 0  # the backbone learns nothing for the first N epochs
    loss: str | list[dict] = "ce"  # ce, ohem, dice, focal, lovasz, or [{name, weight, ...}]
    class_weights: list[float] | None = None
    grad_clip: float | None = None  # max gradient norm; None: no clipping
    amp: str = "none"  # "none", "fp16" (CUDA, with a gradient scaler) or "bf16"
    channels_last: bool = True
    eval_interval: int = 1  # epochs between evaluations
    checkpoint_interval: int = 0  # also write last.pt every N iterations; 0: each epoch only
    early_stop_patience: int = 0  # evaluations without a better mIoU before stopping; 0: off
    deterministic: bool = False
    sync_bn: bool = False
    seed: int = 0
    num_vis: int = 4  # overlay pictures of val predictions written at the end


@dataclass
class Config:
    name: str = "demo"
    out_dir: str = "runs"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        text = "# resolved segmnv3 config\n" + yaml.safe_dump(self.to_dict(), sort_keys=False)
        write_bytes_atomic(path, text.encode())


def _between(low: float, high: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: low <= v <= high), f"a number in {low}…{high}"


_AT_LEAST_1 = (lambda v: v >= 1), "an integer >= 1"
_NOT_NEGATIVE = (lambda v: v >= 0), "a number >= 0"
_POSITIVE = (lambda v: v > 0), "a number > 0"
_OPTIONAL_AT_LEAST_1 = (lambda v: v is None or v >= 1), "null or an integer >= 1"
# The values that make sense, per key (types are checked by the dataclasses' hints).
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model.width_mult": _POSITIVE,
    "model.bn_momentum": ((lambda v: 0 < v <= 1), "a number in (0, 1]"),
    "data.crop_size": ((lambda v: len(v) == 2 and min(v) >= 1), "[height, width], each >= 1"),
    "data.base_size": _OPTIONAL_AT_LEAST_1,
    "data.scale_range": (
        (lambda v: len(v) == 2 and 0 < v[0] <= v[1]),
        "[low, high], 0 < low <= high",
    ),  # fmt: skip
    "data.hflip_prob": _between(0, 1),
    "data.jitter_prob": _between(0, 1),
    "data.jitter": _NOT_NEGATIVE,
    "data.eval_resize": _OPTIONAL_AT_LEAST_1,
    "data.num_workers": _NOT_NEGATIVE,
    "train.epochs": _AT_LEAST_1,
    "train.batch_size": _AT_LEAST_1,
    "train.val_batch_size": _AT_LEAST_1,
    "train.lr": _POSITIVE,
    "train.momentum": ((lambda v: 0 <= v < 1), "a number in [0, 1)"),
    "train.weight_decay": _NOT_NEGATIVE,
    "train.warmup_iters": _NOT_NEGATIVE,
    "train.warmup_factor": ((lambda v: 0 < v <= 1), "a number in (0, 1]"),
    "train.poly_power": _NOT_NEGATIVE,
    "train.aux_weight": _NOT_NEGATIVE,
    "train.backbone_lr_mult": _NOT_NEGATIVE,
    "train.freeze_backbone_epochs": _NOT_NEGATIVE,
    "train.class_weights": (
        (lambda v: v is None or (len(v) > 0 and min(v) >= 0)),
        "null or a list of numbers >= 0, one per class",
    ),  # fmt: skip
    "train.grad_clip": ((lambda v: v is None or v > 0), "null (no clipping) or a number > 0"),
    "train.amp": ((lambda v: v in ("none", "fp16", "bf16")), "none, fp16 or bf16"),
    "train.eval_interval": _AT_LEAST_1,
    "train.checkpoint_interval": _NOT_NEGATIVE,
    "train.early_stop_patience": _NOT_NEGATIVE,
    "train.num_vis": _NOT_NEGATIVE,
}


def check_values(config: Config) -> Config:
    """Raise a :class:`ConfigValueError` naming the first key whose value makes no sense."""
    for key, (ok, valid) in _RULES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if not ok(value):
            raise ConfigValueError(f"{key}={value!r}: must be {valid}")
    return config


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigKeyError(f"override {key}: {part!r} is not a section")
    node[parts[-1]] = value if not isinstance(value, dict) else dict(value)


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """``["train.epochs=3", "data.root=/x"]`` → ``[(key, value)]``; values parse as YAML."""
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not of the form key=value")
        out.append((key.strip(), yaml.safe_load(raw) if raw.strip() else None))
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge a config dict over another, section by section: a key given in ``extra``
    replaces the base value, including free-form option dicts (a complete file means what
    it says)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and key in _SECTIONS and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


_SECTIONS = ("model", "data", "train")


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> Config:
    """Defaults ← ``base`` ← the YAML file at ``path`` ← ``overrides``, checked strictly."""
    data = asdict(Config())
    if base:
        data = _merge(data, base)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config is a mapping of sections (model:, data:, "
                             f"train:, ...), not a {type(loaded).__name__}")  # fmt: skip
        try:
            from_dict(Config, _merge(asdict(Config()), loaded))  # errors name the file
        except (KeyError, TypeError) as exc:
            raise type(exc)(f"{path}: {exc.args[0]}") from None
        data = _merge(data, loaded)
    # Applied one by one: `data.options={...}` sets the whole dict, `data.options.seed=3`
    # one entry of it.
    for key, value in parse_overrides(overrides or []):
        _set_dotted(data, key, value)
    return check_values(from_dict(Config, data))


def config_from_dict(data: dict[str, Any]) -> Config:
    """A Config from a saved (e.g. checkpoint) dict, with the same strict checks."""
    return check_values(from_dict(Config, _merge(asdict(Config()), data)))
