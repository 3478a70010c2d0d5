"""Fine-tuning: a new model starts from a whole trained one (``model.weights``: a registry
name, a torchvision segmentation file or another segmnv3 run's checkpoint). Every tensor
whose name and shape fit is loaded; the classifier layers of another class set start fresh,
except the rows of classes whose names match, which carry over. One log line says what."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from torch import Tensor, nn

from .. import hub
from ..checkpoint import load_checkpoint
from ..models import load_file, state_dict_of

CLASS_LAYERS = ("classifier.", "aux_classifier.")


def source_weights(spec: str) -> tuple[dict[str, Tensor], list[str] | None, str]:
    """(state dict, class names when known, a description) of what ``spec`` names."""
    if spec in hub.WEIGHTS or not Path(spec).is_file():
        entry = hub.get_weights(spec)  # an unknown name lists the known ones
        if entry.task != "segmentation":
            raise ValueError(f"model.weights {spec!r} are {entry.task} weights: use "
                             "model.pretrained_backbone for a backbone")  # fmt: skip
        path = hub.weights_file(spec)
        return state_dict_of(load_file(path), path), list(entry.classes) or None, spec
    path = Path(spec)
    state = load_checkpoint(path)
    if "model" in state and "classes" in state:
        return state_dict_of(state["model"], path), list(state["classes"]), f"run {path}"
    voc = list(hub.VOC_CLASSES)
    weights = state_dict_of(state, path)
    head = [v for k, v in weights.items() if k.startswith("classifier.")]
    classes = voc if head and head[-1].shape[0] == len(voc) else None
    return weights, classes, f"torchvision file {path}"


def _class_tensor(key: str, source: Tensor, target: Tensor, n_src: int, n_dst: int) -> bool:
    """A classifier layer's per-class tensor (weight or bias of a layer with one output per
    class) in both models."""
    if not key.startswith(CLASS_LAYERS) or source.dim() == 0 or target.dim() == 0:
        return False
    return (source.shape[0] == n_src and target.shape[0] == n_dst
            and source.shape[1:] == target.shape[1:])  # fmt: skip


def load_for_finetuning(model: nn.Module, spec: str, classes: Sequence[str],
                        log: Callable[[str], None] = print) -> dict:  # fmt: skip
    """Load what fits of ``spec`` into ``model`` (see the module's docstring); returns
    the counts and names that the log line gives."""
    source, src_classes, what = source_weights(spec)
    target = model.state_dict()
    same_classes = src_classes is not None and list(src_classes) == list(classes)
    loaded, fresh, carried = [], [], set()
    for key, value in target.items():
        s = source.get(key)
        if s is None:
            fresh.append(key)
            continue
        if src_classes and not same_classes and _class_tensor(key, s, value, len(src_classes),
                                                              len(classes)):  # fmt: skip
            new = value.clone()
            for i, name in enumerate(classes):
                if name in src_classes:
                    new[i] = s[src_classes.index(name)]
                    carried.add(name)
            target[key] = new
            fresh.append(key)
        elif s.shape == value.shape:
            target[key] = s.to(value.dtype)
            loaded.append(key)
        else:
            fresh.append(key)
    if len(loaded) < len(target) // 2:
        raise ValueError(
            f"model.weights {spec!r}: only {len(loaded)} of {len(target)} tensors fit this model: "
            "the weights are of another architecture (model.head, model.backbone, "
            "model.reduced_tail: torchvision's models have reduced_tail false)"
        )
    model.load_state_dict(target)
    n_src = len(src_classes) if src_classes else "?"
    rows = f"; rows carried over for {', '.join(sorted(carried))}" if carried else ""
    fresh_names = ", ".join(fresh) or "none"
    log(f"fine-tuning from {what}: {len(loaded)} of {len(target)} tensors loaded; "
        f"fresh: {fresh_names} ({n_src} classes -> {len(classes)}){rows}")  # fmt: skip
    return {"loaded": len(loaded), "total": len(target), "fresh": fresh,
            "carried": sorted(carried)}  # fmt: skip


def backbone_parameters(model: nn.Module) -> set[int]:
    """ids of the backbone's parameters (for their own learning rate)."""
    return {id(p) for p in model.backbone.parameters()}


def freeze_backbone(model: nn.Module, frozen: bool) -> None:
    """Backbone BatchNorm statistics stay as loaded while frozen (its weights get lr 0)."""
    model.backbone.train(not frozen)
