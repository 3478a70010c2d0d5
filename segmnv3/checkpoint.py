"""Checkpoint I/O: atomic writes, safe reads, and models rebuilt from checkpoints.

A checkpoint is a plain dict that ``torch.load(..., weights_only=True)`` reads: ``model``
(state dict), ``config`` (the resolved config as a dict), ``classes``, ``palette`` and, for
resuming, ``optimizer``, ``scheduler``, ``scaler``, ``epoch``, ``iteration``, ``rng``, ...
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import hub
from .config import Config, config_from_dict
from .hub import VOC_CLASSES, VOC_PALETTE
from .io import write_bytes_atomic
from .models import build_model, load_file, state_dict_of, torchvision_model_options
from .preprocess import Preprocessing
from .viz import default_palette


def tensor_digests(weights: dict[str, torch.Tensor]) -> dict[str, str]:
    """A short SHA-256 of each tensor's bytes: stored with a checkpoint's model state and
    checked when it loads, so a file damaged inside a tensor (its zip directory intact, so
    torch.load reads it without complaint) is refused, naming the tensor."""
    out = {}
    for key, value in weights.items():
        if isinstance(value, torch.Tensor):
            raw = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
            out[key] = hashlib.sha256(raw.tobytes()).hexdigest()[:16]
    return out


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: temp file, fsync, ``os.replace``. The model
    state's tensors get digests (``model_sha256``) that loading checks."""
    if isinstance(state.get("model"), dict):
        state = {**state, "model_sha256": tensor_digests(state["model"])}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def check_digests(state: dict[str, Any], path: str | Path) -> None:
    """Refuse a checkpoint whose model tensors differ from the digests saved with them
    (checkpoints from before digests were saved have none and load as they are)."""
    saved = state.get("model_sha256")
    if not isinstance(saved, dict) or not isinstance(state.get("model"), dict):
        return
    actual = tensor_digests(state["model"])
    bad = sorted(k for k in saved if actual.get(k) != saved[k]) + sorted(set(actual) - set(saved))
    if bad:
        raise ValueError(
            f"{path}: corrupt: tensor {bad[0]!r} differs from the digest saved with it "
            f"({len(bad)} tensor(s) in all); restore the file from a copy"
        )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; errors name the file."""
    state = load_file(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a checkpoint (expected a dict)")
    check_digests(state, path)
    return state


@dataclass
class LoadedModel:
    """A model rebuilt from a file, with what is needed to use it."""

    model: nn.Module
    config: Config
    classes: list[str]
    palette: list[tuple[int, int, int]]
    source: str  # "segmnv3", "torchvision" or the registry name

    @property
    def preprocessing(self) -> Preprocessing:
        """How the model's input is made: the config's eval resize, ImageNet statistics."""
        return Preprocessing(self.config.data.eval_resize)


def _load_state(model: nn.Module, state: dict, path) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # missing / unexpected keys, shape mismatches
        first = str(exc).splitlines()[1:2] or [str(exc)]
        raise ValueError(f"{path}: weights do not fit the model ({first[0].strip()})") from None


def model_args(config: Config, num_classes: int) -> dict[str, Any]:
    """``build_model`` keyword arguments from a config: what a checkpoint stores as
    ``model_args`` (like nanoGPT's) and :func:`rebuild_model` builds from."""
    m = config.model
    return {
        "head": m.head,
        "num_classes": num_classes,
        "backbone": m.backbone,
        "reduced_tail": m.reduced_tail,
        "dilated": m.dilated,
        "width_mult": m.width_mult,
        "aux": m.aux,
        "bn_momentum": m.bn_momentum,
        **m.head_options,
    }


def rebuild_model(state: dict[str, Any], path: str | Path = "checkpoint") -> nn.Module:
    """The model of a segmnv3 checkpoint, built from its ``model_args`` (or, in checkpoints
    from before they were stored, from its config) with its weights loaded."""
    classes = list(state["classes"])
    args = state.get("model_args")
    if args is None:
        try:
            args = model_args(config_from_dict(state["config"]), len(classes))
        except ValueError as exc:
            raise ValueError(f"{path}: its config does not load: {exc}") from None
    if not isinstance(args, dict) or args.get("num_classes") != len(classes):
        raise ValueError(f"{path}: model_args {args!r} do not fit its {len(classes)} classes")
    try:
        model = build_model(**args)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: model_args {args!r} do not build a model ({exc})") from None
    _load_state(model, state_dict_of(state["model"], path), path)
    return model


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model saved in ``path``: a segmnv3 checkpoint or a torchvision
    segmentation state dict (head detected from its keys; the 21 VOC classes; the config
    set to COCO with the VOC categories)."""
    state = load_checkpoint(path)
    if "model" in state and "config" in state:
        for key in ("classes", "palette"):
            if key not in state:
                raise ValueError(f"{path}: a segmnv3 checkpoint without {key!r}")
        try:
            config = config_from_dict(state["config"])
        except ValueError as exc:
            raise ValueError(f"{path}: its config does not load: {exc}") from None
        classes = list(state["classes"])
        palette = [tuple(c) for c in state["palette"]]
        model = rebuild_model(state, path)
        source = "segmnv3"
    else:
        state = state_dict_of(state, path)
        try:
            options = torchvision_model_options(state)
        except ValueError:
            raise ValueError(
                f"{path}: neither a segmnv3 checkpoint nor a torchvision MobileNetV3 segmentation "
                "state dict (no segmentation head in its keys)"
            ) from None
        # Preprocessed as torchvision evaluates these models (shorter side 520), the same
        # rule as for the registry's names; the file is named by its entry when its hash
        # is a known one.
        config = config_from_dict(hub.torchvision_segmentation_config(
            options["head"], options["reduced_tail"], options["aux"]))  # fmt: skip
        model = build_model(**options)
        _load_state(model, state, path)
        n = options["num_classes"]
        classes = VOC_CLASSES if n == 21 else [f"class_{i}" for i in range(n)]
        palette = VOC_PALETTE if n == 21 else default_palette(n)
        source = hub.known_entry_of(path) or "torchvision"
    return LoadedModel(model.to(device).eval(), config, classes, palette, source)


def load_pretrained(name: str, device: str | torch.device = "cpu") -> LoadedModel:
    """A registry entry (``segmnv3.hub``) as a :class:`LoadedModel`: the model with its
    weights (cached, verified, downloaded only when missing), its classes and palette, and
    the config it is evaluated with."""
    entry = hub.get_weights(name)
    if entry.task != "segmentation":
        raise ValueError(f"{name!r} are {entry.task} weights, not a segmentation model")
    model = build_model(weights=name)
    config = config_from_dict(entry.config)
    config.data.eval_resize = entry.resize  # the entry's preprocessing, one rule
    palette = [tuple(c) for c in entry.palette] or default_palette(len(entry.classes))
    return LoadedModel(model.to(device).eval(), config, list(entry.classes), palette, name)


def load_source(
    checkpoint: str | Path | None = None,
    weights: str | None = None,
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """What a tool's ``--checkpoint FILE`` or ``--weights NAME`` names, loaded."""
    if (checkpoint is None) == (weights is None):
        raise ValueError("give a checkpoint file or a weights name (one of the two)")
    return load_model(checkpoint, device) if weights is None else load_pretrained(weights, device)


def export_weights(
    loaded: LoadedModel,
    out_dir: str | Path,
    *,
    name: str | None = None,
    metrics: dict | None = None,
    license: str = "",
    source: str = "",
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>-<sha256 prefix>.pth`` (the model's state dict only) and a
    JSON card beside it (classes, palette, preprocessing, metrics, architecture, config, and
    a file:// URL to replace by the team's own). ``segmnv3.hub.load_registry_file(card)``
    or ``$SEGMNV3_WEIGHTS_REGISTRY`` makes the name known. Never replaces a file."""
    buffer = io.BytesIO()
    torch.save(loaded.model.state_dict(), buffer)
    data = buffer.getvalue()
    name = name or loaded.config.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name) or ".." in name:
        raise ValueError(f"weights name {name!r}: use letters, digits and . _ + - (it names the "
                         "files written in the output folder)")  # fmt: skip
    stem = f"{name}-{hashlib.sha256(data).hexdigest()[:8]}"
    weights, card = Path(out_dir) / f"{stem}.pth", Path(out_dir) / f"{stem}.json"
    for target in (weights, card):
        if target.exists():
            raise FileExistsError(f"{target} exists: these weights were exported already")
    entry = hub.KnownWeights(
        name=name,
        url=weights.resolve().as_uri(),
        task="segmentation",
        architecture=model_args(loaded.config, len(loaded.classes)),
        classes=tuple(loaded.classes),
        palette=tuple(tuple(c) for c in loaded.palette),
        resize=loaded.config.data.eval_resize,
        metrics=metrics or {},
        num_params=sum(p.numel() for p in loaded.model.parameters()),
        source=source,
        license=license,
        config=loaded.config.to_dict(),
    )
    write_bytes_atomic(weights, data)
    write_bytes_atomic(card, (json.dumps(entry.card(), indent=2) + "\n").encode())
    return weights, card
