"""LiteRT's ``.tflite`` (Android's standard runtime, XNNPACK on the CPU): conversion of the
phone graph with litert-torch, and the backend that runs the file in ``ai_edge_litert``'s
interpreter. The card and the graph are :mod:`segmnv3.inference.mobile`'s."""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import torch
from torch import nn

from .mobile import PhoneBackend, args_of, require

LITERT_EXTRA = "segmnv3[litert]"  # not in .[dev]: see pyproject.toml


def convert_tflite(graph: nn.Module, example) -> bytes:
    """``graph`` converted by litert-torch on ``example`` (a tensor or a tuple) to a .tflite
    flatbuffer."""
    require("litert_torch", "litert-torch (LiteRT's converter)", LITERT_EXTRA)
    import litert_torch

    edge = litert_torch.convert(graph.eval(), args_of(example))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        edge.export(str(path))
        return path.read_bytes()


def delegate_report(interpreter) -> tuple[int, dict[str, int]]:
    """The number of XNNPACK partitions and the op counts of the converted graph: one
    partition means every op runs in the delegate; more mean ops between them run on
    LiteRT's own kernels."""
    ops = collections.Counter(o["op_name"] for o in interpreter._get_ops_details())
    partitions = ops.pop("DELEGATE", 0)
    return partitions, dict(ops)


class LiteRTBackend(PhoneBackend):
    """A ``.tflite`` run by LiteRT's interpreter with the XNNPACK delegate."""

    name = "litert"

    def __init__(self, source: str | Path | bytes, card: dict, num_threads: int | None = None):
        require("ai_edge_litert", "LiteRT (ai-edge-litert)", LITERT_EXTRA)
        from ai_edge_litert.interpreter import Interpreter

        super().__init__(card)
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        self.interpreter = Interpreter(model_content=data, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def run(self, x: torch.Tensor) -> torch.Tensor:
        self.interpreter.set_tensor(self.input["index"], x.numpy())
        self.interpreter.invoke()
        return torch.from_numpy(self.interpreter.get_tensor(self.output["index"]).copy())
