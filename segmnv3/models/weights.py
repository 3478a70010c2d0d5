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
    """``torch.load`` a file safely (``weights_only=True``), with errors that name it and
    say what it holds instead of weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(64)
    if b"ONNX" in head[:32].upper() or path.suffix.lower() == ".onnx":
        raise ValueError(
            f"{path}: an ONNX model, not a PyTorch checkpoint; run it with "
            "Segmenter.from_checkpoint(path, backend='onnxruntime') or predict_seg.py --backend "
            "onnxruntime"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated zip, a pickle with code, a text file, ...
        raise ValueError(f"{path}: {_why_unreadable(exc, head)}") from exc


def _why_unreadable(exc: Exception, head: bytes) -> str:
    text = str(exc)
    if "Unsupported global" in text or "weights_only" in text and "GLOBAL" in text:
        return (
            "holds pickled Python objects (a whole model saved with torch.save(model)?), which "
            "are never unpickled here; save its weights instead: torch.save(model.state_dict(), "
            "path)"
        )
    if head and all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return "a text file, not a PyTorch checkpoint"
    if not head.startswith((b"PK", b"\x80")):  # torch.save writes a zip (or, long ago, a pickle)
        return "not a PyTorch checkpoint (not the zip archive torch.save writes)"
    return "not a readable PyTorch checkpoint (truncated or corrupt?)"


def state_dict_of(obj: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a state dict, or one wrapped in ``{"model": ...}`` /
    ``{"state_dict": ...}`` (training scripts' habits), with DDP's ``module.`` prefixes
    removed."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
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
