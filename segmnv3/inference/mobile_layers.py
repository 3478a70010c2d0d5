"""Naming the layer behind a phone export's problem: the ops an int8 graph keeps in float,
and, when exporting, lowering or quantizing fails, the deepest layer that fails on its own.

Both name layers by their path in the model (``model.backbone.features.12.block.1``) and
their class, so a user knows which part of their network to change.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# What moves, views or casts memory, and what only checks it: not compute.
_NOT_COMPUTE = ("getitem", "view", "permute", "reshape", "_to_copy", "to.", "clone",
                "contiguous", "expand", "unsqueeze", "squeeze", "flatten", "t.default",
                "transpose", "detach", "_assert")  # fmt: skip


def layer_of(node) -> str:
    """``path (Class)`` of the module a graph node was traced in."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "the graph around the model"
    path, kind = next(reversed(stack.values()))
    name = getattr(kind, "__name__", str(kind).rsplit(".", 1)[-1].strip("'>"))
    return f"{path or 'the model'} ({name})"


# Nodes outside a delegate that move or view memory: they cost a copy at most.
_OUTSIDE_NOT_COMPUTE = (
    "getitem", "executorch_call_delegate", "alloc", "_to_dim_order_copy", "as_strided_copy",
    "view_copy", "permute_copy", "_clone_dim_order",
)  # fmt: skip


def left_out(graph) -> list[str]:
    """``op (layer)`` for each compute node of a lowered graph outside the delegate."""
    names = []
    for node in graph.nodes:
        target = str(node.target)
        if node.op != "call_function" or any(t in target for t in _OUTSIDE_NOT_COMPUTE):
            continue
        op = getattr(node.target, "__name__", target).removesuffix(".default")
        names.append(f"{op} ({layer_of(node)})")
    return names


def float_ops(prepared) -> list[str]:
    """``op (layer)`` for each compute node of a PT2E-prepared graph that the quantizer did
    not annotate: what runs in float inside the int8 file (``×n`` when a layer has several)."""
    found: dict[str, int] = {}
    for node in prepared.graph.nodes:
        target = str(node.target)
        if node.op != "call_function" or any(t in target for t in _NOT_COMPUTE):
            continue
        annotation = node.meta.get("quantization_annotation")
        if annotation is not None and getattr(annotation, "_annotated", False):
            continue
        op = getattr(node.target, "__name__", target).removesuffix(".default").rstrip("_")
        key = f"{op} ({layer_of(node)})"
        found[key] = found.get(key, 0) + 1
    return [k if n == 1 else f"{k} ×{n}" for k, n in found.items()]


def by_op(entries: list[str]) -> str:
    """``float_ops``/``left_out`` entries summed by op: ``hardswish ×14, mean ×5``."""
    counts: dict[str, int] = {}
    for entry in entries:
        op, _, rest = entry.partition(" (")
        times = rest.rsplit(" ×", 1)
        counts[op] = counts.get(op, 0) + (int(times[1]) if len(times) == 2 else 1)
    return ", ".join(f"{op} ×{n}" if n > 1 else op for op, n in counts.items())


class Bound(nn.Module):
    """``module`` called with fixed keyword arguments: a submodule as exporters take it."""

    def __init__(self, module: nn.Module, kwargs: dict) -> None:
        super().__init__()
        self.module, self.kwargs = module, kwargs

    def forward(self, *args):
        return self.module(*args, **self.kwargs)


def _inputs_of(model: nn.Module, example: tuple) -> dict[str, tuple]:
    """Each submodule's (args, kwargs) in one eager run on ``example``."""
    seen: dict[str, tuple] = {}
    hooks = [m.register_forward_pre_hook(
        lambda _m, args, kwargs, name=name: seen.setdefault(name, (args, kwargs)) and None,
        with_kwargs=True) for name, m in model.named_modules() if name]  # fmt: skip
    try:
        with torch.no_grad():
            model(*example)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def failing_layer(model: nn.Module, example: tuple, step: Callable) -> str | None:
    """The deepest submodule of ``model`` on which ``step(module, args, kwargs)`` fails by
    itself (descending into the first failing child at each level), as ``path (Class)``;
    None when no submodule fails alone (the problem is in how they are joined)."""
    inputs = _inputs_of(model, example)

    def fails(name: str, module: nn.Module) -> bool:
        args, kwargs = inputs[name]
        try:
            step(module, args, kwargs)
        except Exception:  # noqa: BLE001  (any failure of the exporter is what is looked for)
            return True
        return False

    name, module, found = "", model, None
    while True:
        children = ((f"{name}.{n}" if name else n, c) for n, c in module.named_children())
        child = next(((n, c) for n, c in children if n in inputs and fails(n, c)), None)
        if child is None:
            return found
        name, module = child
        found = f"{name} ({type(module).__name__})"


def named_failure(what: str, model: nn.Module, example: tuple, step: Callable,
                  exc: Exception) -> ValueError:  # fmt: skip
    """A one-line error for a failed ``what`` (e.g. "lowering to XNNPACK"), naming the layer
    that fails on its own and the exporter's first line."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()),
                 type(exc).__name__)  # fmt: skip
    layer = failing_layer(model, example, step)
    where = f"in layer {layer}" if layer else "where the layers are joined (each exports alone)"
    return ValueError(f"{what} failed {where}: {type(exc).__name__}: {first}")
