"""Reading weight files: segmnv3 checkpoints, torchvision segmentation state dicts and
torchvision's ImageNet ``mobilenet_v3_large`` weights (for the backbone).

Everything goes through ``torch.load(..., weights_only=True)``: no pickled code is executed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def load_file(path: str | Path) -> Any:
    """``torch.load`` a file safely, with errors that name it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated zip, a pickle with code, a text file, ...
        raise ValueError(f"cannot read weights file {path}: {exc}") from exc


def state_dict_of(obj: Any, path: str | Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return obj


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> list[str]:
    """Load torchvision ImageNet MobileNetV3 weights (``features.N.…``) into ``backbone``.

    Tensors whose shapes differ (the reduced tail) and the classifier are skipped; the skipped
    names are logged and returned. Fails if nothing at all matches.
    """
    source = state_dict_of(load_file(path), path)
    target = backbone.state_dict()
    loaded, skipped = {}, []
    for key, value in source.items():
        name = key.removeprefix("features.").removeprefix("backbone.")
        if name in target and target[name].shape == value.shape:
            loaded[name] = value
        else:
            skipped.append(key)
    if not loaded:
        raise ValueError(f"{path}: no tensor matches the backbone; is it a MobileNetV3 file?")
    backbone.load_state_dict(loaded, strict=False)
    missing = sorted(set(target) - set(loaded))
    if skipped or missing:
        log.warning(
            "pretrained backbone %s: loaded %d tensors; skipped %d (shape differs or not in the "
            "backbone): %s; left %d at their initial values: %s",
            path,
            len(loaded),
            len(skipped),
            ", ".join(skipped),
            len(missing),
            ", ".join(missing),
        )
    return skipped


def torchvision_model_options(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Infer ``build_model`` arguments from a torchvision segmentation state dict's keys."""
    if "classifier.cbr.0.weight" in state_dict:
        head, last = "lraspp", "classifier.high_classifier.weight"
    elif "classifier.0.convs.0.0.weight" in state_dict:
        head, last = "deeplabv3", "classifier.4.weight"
    elif "classifier.0.weight" in state_dict and "classifier.4.weight" in state_dict:
        head, last = "fcn", "classifier.4.weight"
    else:
        raise ValueError("not a torchvision MobileNetV3 segmentation state dict (unknown head)")
    final_conv = max(
        (k for k in state_dict if k.startswith("backbone.") and k.endswith(".0.weight")),
        key=lambda k: int(k.split(".")[1]),
    )
    return {
        "head": head,
        "num_classes": state_dict[last].shape[0],
        "reduced_tail": state_dict[final_conv].shape[0] != 960,
        "aux": any(k.startswith("aux_classifier.") for k in state_dict),
    }
