"""LiteRT's ``.tflite`` (Android's standard runtime, XNNPACK on the CPU): conversion of the
phone graph with litert-torch, static int8 with ai-edge-quantizer, and the backend that runs
the file in ``ai_edge_litert``'s interpreter. The card and the graph are
:mod:`segmnv3.inference.mobile`'s.

int8: LiteRT's XNNPACK delegate has no int8 HARD_SWISH, so each one would split the graph
(15 partitions, slower than fp32). Before converting, hardswish is written as
``(x/6)·relu6(x+3)`` and the SE gates' hardsigmoid as ``relu6(x+3)/6`` — forms the converter
does not fuse back — so every op is int8 in one XNNPACK partition. The float file is then
quantized (int8 weights per channel, int8 activations from min/max over the calibration
images) by ai-edge-quantizer, which works on the converted NHWC graph and adds no layout
transposes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .mobile import PhoneBackend, args_of, require
from .mobile_rewrites import swap_modules

LITERT_EXTRA = "segmnv3[litert]"
LABELS_SCOPE = "CellArgmax"  # litert-torch's scope of the labels' ops, float in an int8 file


class SplitHardswish(nn.Module):
    """hardswish(x) as (x/6)·relu6(x+3): int8 ops XNNPACK runs, not fused back to HARD_SWISH."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * (1.0 / 6.0)) * F.relu6(x + 3.0)


class SplitHardsigmoid(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) * (1.0 / 6.0)


def split_activations(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each ``nn.Hardswish``/``nn.Hardsigmoid`` written in int8 ops."""
    swaps = {nn.Hardswish: SplitHardswish, nn.Hardsigmoid: SplitHardsigmoid}
    return swap_modules(model, lambda m: swaps[type(m)]() if type(m) in swaps else None)


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


def quantize_tflite(float_file: bytes, batches: Iterable[torch.Tensor]) -> bytes:
    """Static int8 of a float .tflite by ai-edge-quantizer (int8 weights per channel, int8
    activations from min/max over ``batches``: the graph's inputs)."""
    require("ai_edge_quantizer", "ai-edge-quantizer (LiteRT's quantizer)", LITERT_EXTRA)
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    ((signature, io),) = Interpreter(model_content=float_file).get_signature_list().items()
    (name,) = io["inputs"]
    q = quantizer.Quantizer(bytearray(float_file))
    # the labels' upsampling-argmax (CellArgmax) compares logits in float: not quantized
    q.load_quantization_recipe(recipe.static_wi8_ai8() + [
        {"regex": LABELS_SCOPE, "operation": "*", "algorithm_key": "no_quantize"}])  # fmt: skip
    calibration = q.calibrate({signature: [{name: b.numpy()} for b in batches]})
    return bytes(q.quantize(calibration, enable_progress_bar=False,
                            enable_progress_report=False).quantized_model)  # fmt: skip


def convert_tflite_int8(graph: nn.Module, example, batches: Iterable) -> bytes:
    """``graph`` with its activations split (:func:`split_activations`), converted, then
    quantized on ``batches``."""
    return quantize_tflite(convert_tflite(split_activations(graph), example), batches)


def float_tensors(interpreter) -> list[str]:
    """``OP (tensor)`` for each op of an int8 file whose output stays float (the input's
    cast and the labels' float comparison aside)."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():
        outs = [tensors[i] for i in op["outputs"] if i in tensors]
        if op["op_name"] in ("CAST", "DEQUANTIZE", "DELEGATE") or LABELS_SCOPE in outs[0]["name"]:
            continue
        if any(t["dtype"] == np.float32 for t in outs):
            found.append(f"{op['op_name']} ({_layer(outs[0]['name'])})")
    return found


def delegate_report(interpreter) -> tuple[int, list[str]]:
    """The number of XNNPACK partitions and ``OP (tensor)`` for each op left to LiteRT's own
    kernels. An op is outside when it feeds a partition, reads a partition's output, or is
    joined by a tensor to an op outside (delegated ops' tensors stay inside their
    partition, but for its inputs and outputs)."""
    ops = interpreter._get_ops_details()
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    d_in = {int(t) for o in delegates for t in o["inputs"]}
    d_out = {int(t) for o in delegates for t in o["outputs"]}
    plain = [o for o in ops if o["op_name"] != "DELEGATE"]
    if not delegates:
        outside = {o["index"] for o in plain}
    else:
        outside = {o["index"] for o in plain if d_in & set(map(int, o["outputs"]))
                   or d_out & set(map(int, o["inputs"]))}  # fmt: skip
    produced = {int(t): o["index"] for o in plain for t in o["outputs"]}
    changed = True
    while changed:  # tensors between two outside ops: both outside
        changed = False
        for o in plain:
            ins = [produced.get(int(t)) for t in o["inputs"] if int(t) not in d_in | d_out]
            if o["index"] not in outside and any(i in outside for i in ins if i is not None):
                outside.add(o["index"])
                changed = True
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return len(delegates), [
        f"{o['op_name']} ({_layer(names.get(int(o['outputs'][0]), ''))})"
        for o in plain if o["index"] in outside and o["op_name"] not in COPIES
    ]  # fmt: skip


COPIES = ("CAST",)  # the uint8 input's conversion to float: a copy, as on ExecuTorch


def _layer(tensor_name: str) -> str:
    """The layer a tensor comes from, as litert-torch names it (its last module scope)."""
    last = tensor_name.rsplit("/", 1)[-1].split(";")[0]
    if not last or last.endswith("MobileGraph"):
        return "the graph around the model"
    return last.rsplit(".", 1)[-1]


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
        """The file's output; int8 logits are dequantized with the output's scale."""
        self.interpreter.set_tensor(self.input["index"], x.numpy())
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])
        scale, zero = self.output["quantization"]
        if scale and self.spec.output == "logits":
            return torch.from_numpy((out.astype(np.float32) - zero) * scale)
        return torch.from_numpy(out.copy())

    def output_card(self) -> dict:
        """The output's dtype (and quantization) as the app gets it."""
        entry = {"dtype": np.dtype(self.output["dtype"]).name}
        scale, zero = self.output["quantization"]
        if scale:
            entry["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
        return entry
