"""ONNX export, its check against PyTorch, ONNX Runtime sessions and int8 quantization.

The exported graph takes a normalised ``input`` (N×3×H×W float32; batch, height and width
dynamic) and gives ``logits`` (N×K×H×W) and ``labels`` (N×H×W uint8, the argmax, computed in
the graph so that a caller needing masks never copies the logits out). Class names, palette
and preprocessing travel in the model's metadata.
"""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.io import write_bytes_atomic
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD

OPSET = 17


class _Deploy(nn.Module):
    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.model, self.num_classes = model, num_classes

    def forward(self, x: torch.Tensor):
        logits = self.model(x)["out"]
        labels = logits.argmax(1)
        labels = labels.to(torch.uint8) if self.num_classes <= 255 else labels.to(torch.int32)
        return logits, labels


def export_onnx(
    model: nn.Module,
    output: str | Path | None,
    *,
    classes: Sequence[str],
    palette: Sequence[Sequence[int]],
    resize: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    sample_size: tuple[int, int] = (128, 128),
) -> bytes:
    """Export ``model`` (eval mode, on the CPU) to ONNX; write it to ``output`` (atomically)
    when given, and return the serialised model."""
    import onnx

    model = copy.deepcopy(model).cpu().eval()
    model.aux_classifier = None  # the auxiliary head only serves training
    wrapper = _Deploy(model, len(classes))
    buffer = io.BytesIO()
    sample = torch.zeros(1, 3, *sample_size)
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (sample,),
            buffer,
            input_names=["input"],
            output_names=["logits", "labels"],
            dynamic_axes={
                "input": {0: "batch", 2: "height", 3: "width"},
                "logits": {0: "batch", 2: "height", 3: "width"},
                "labels": {0: "batch", 1: "height", 2: "width"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    meta = {
        "segmnv3.classes": json.dumps(list(classes)),
        "segmnv3.palette": json.dumps([list(map(int, c)) for c in palette]),
        "segmnv3.resize": json.dumps(resize),
        "segmnv3.mean": json.dumps(list(mean)),
        "segmnv3.std": json.dumps(list(std)),
    }
    onnx.helper.set_model_props(proto, meta)
    data = proto.SerializeToString()
    if output is not None:
        write_bytes_atomic(output, data)
    return data


def load_onnx_metadata(path: str | Path) -> dict:
    """The class names, palette and preprocessing stored by :func:`export_onnx`."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable ONNX model ({exc})") from exc
    props = {p.key: p.value for p in proto.metadata_props}
    if "segmnv3.classes" not in props:
        raise ValueError(f"{path}: no segmnv3 metadata (was it written by tools/export_seg.py?)")
    return {k.removeprefix("segmnv3."): json.loads(v) for k, v in props.items()
            if k.startswith("segmnv3.")}  # fmt: skip


def ort_session(model: str | Path | bytes, device: str = "cpu", num_threads: int | None = None):
    """An ONNX Runtime session with full graph optimisation (CUDA provider when asked)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        options.intra_op_num_threads = num_threads
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda"):
        providers.insert(0, "CUDAExecutionProvider")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=providers)


def check_onnx(
    model: nn.Module,
    session,
    sizes: Iterable[tuple[int, int]] = ((64, 64), (97, 131), (256, 512)),
    max_diff: float = 1e-4,
    min_agreement: float = 0.999,
    seed: int = 0,
) -> list[dict]:
    """Compare ONNX Runtime with PyTorch on random inputs of each size. Returns one row
    per size (max abs logit difference, argmax agreement) and raises if a bound fails."""
    model = model.cpu().eval()
    g = torch.Generator().manual_seed(seed)
    rows = []
    for h, w in sizes:
        x = torch.randn(2, 3, h, w, generator=g)
        with torch.no_grad():
            ref = model(x)["out"]
        logits, labels = session.run(["logits", "labels"], {"input": x.numpy()})
        diff = float(np.abs(logits - ref.numpy()).max())
        agree = float((labels == ref.argmax(1).numpy()).mean())
        rows.append({"size": [h, w], "max_abs_diff": diff, "argmax_agreement": agree})
    bad = [r for r in rows if r["max_abs_diff"] > max_diff or r["argmax_agreement"] < min_agreement]
    if bad:
        raise AssertionError(
            f"ONNX Runtime differs from PyTorch (bounds: diff <= {max_diff}, agreement >= "
            f"{min_agreement}): {bad}"
        )
    return rows


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over prepared input arrays."""

    def __init__(self, inputs: Iterable[np.ndarray]) -> None:
        self.inputs = iter(inputs)

    def get_next(self):
        x = next(self.inputs, None)
        return None if x is None else {"input": x}


def quantize_int8(
    fp32_path: str | Path, int8_path: str | Path, calibration: Iterable[np.ndarray]
) -> None:
    """Static int8 quantization (QDQ, per-channel weights, calibrated on ``calibration``:
    N×3×H×W float32 arrays prepared exactly as for inference)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # The full-resolution tail (the upsampling that makes ``logits``) stays in float: in int8
    # it would need a quantize/dequantize pair over K×H×W values, which costs more than the
    # int8 arithmetic saves.
    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    tail, tensors = [], {"logits"}
    for node in graph.node:  # the node making "logits" and everything after it
        if tensors & set(node.output) or tensors & set(node.input):
            tail.append(node.name)
            tensors |= set(node.output)
    int8_path = Path(int8_path)
    pre = int8_path.with_suffix(".pre.onnx")
    tmp = int8_path.with_suffix(".tmp.onnx")
    try:
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(tmp),
            _Calibration(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=tail,
        )
        proto = _uint8_tail(onnx.load(str(tmp)))
        source = onnx.load(str(fp32_path), load_external_data=False)
        onnx.helper.set_model_props(proto, {p.key: p.value for p in source.metadata_props})
        write_bytes_atomic(int8_path, proto.SerializeToString())
    finally:
        for p in (pre, tmp):
            p.unlink(missing_ok=True)


def _uint8_tail(proto):
    """Run the final upsampling and the argmax on the quantized uint8 logits.

    The quantizer leaves ``DequantizeLinear → Resize → logits → ArgMax`` in float, and that
    full-resolution tail then costs as much as the whole int8 network. Upsampling the uint8
    values instead and taking the argmax there gives the same labels up to rounding
    (dequantization is increasing). The int8 model's only output is then ``labels``.
    """
    import onnx

    graph = proto.graph
    producer = {out: node for node in graph.node for out in node.output}
    resize = next((n for n in graph.node if "logits" in n.output), None)
    if resize is None or resize.op_type != "Resize":
        return proto
    dq = producer.get(resize.input[0])
    if dq is None or dq.op_type != "DequantizeLinear":
        return proto
    quantized = dq.input[0]
    new_resize = onnx.NodeProto()
    new_resize.CopyFrom(resize)
    new_resize.name = resize.name + "_uint8"
    new_resize.input[0] = quantized
    new_resize.output[0] = "logits_uint8"
    nodes = []
    for node in graph.node:
        if node is resize:
            nodes.append(new_resize)
            continue
        if node.op_type == "ArgMax" and "logits" in node.input:
            node.input[0] = "logits_uint8"
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    # ONNX Runtime computes every graph output on every run: dequantizing K×H×W logits
    # nobody asked for would cost as much as the upsampling. The int8 model gives labels.
    outputs = [o for o in graph.output if o.name != "logits"]
    del graph.output[:]
    graph.output.extend(outputs)
    return proto


def median_latency(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))
