"""ONNX export, its check against PyTorch, ONNX Runtime sessions and graph cuts (int8: int8.py).

The exported graph takes a normalised ``input`` (N×3×H×W float32; batch, height and width
dynamic) and gives ``logits`` (N×K×H×W) and ``labels`` (N×H×W uint8, the argmax, computed in
the graph so that a caller needing masks never copies the logits out). Class names, palette
and preprocessing travel in the model's metadata.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..io import write_bytes_atomic
from ..postprocess import label_dtype
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD

OPSET = 17


class LogitsAndLabels(nn.Module):
    """The graph that is exported: ``model(x)["out"]`` and its argmax as class ids."""

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.model, self.dtype = model, label_dtype(num_classes)

    def forward(self, x: torch.Tensor):
        logits = self.model(x)["out"]
        return logits, logits.argmax(1).to(self.dtype)


class LowresLogits(nn.Module):
    """The graph a runtime backend runs: the head's logits before the final upsampling."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model(x, upsample=False)["out"]


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
    lowres: bool = False,
) -> bytes:
    """Export ``model`` (eval mode, on the CPU) to ONNX; write it to ``output`` (atomically)
    when given, and return the serialised model. The file's outputs are ``logits`` and
    ``labels`` at the input's size; ``lowres=True`` exports only ``logits_lowres`` (what a
    backend runs: :func:`lowres_graph` of the full file, without exporting its tail)."""
    import onnx

    model = copy.deepcopy(model).cpu().eval()
    model.aux_classifier = None  # the auxiliary head only serves training
    wrapper = LowresLogits(model) if lowres else LogitsAndLabels(model, len(classes))
    outputs = (
        {"logits_lowres": {0: "batch", 2: "h", 3: "w"}}
        if lowres
        else {
            "logits": {0: "batch", 2: "height", 3: "width"},
            "labels": {0: "batch", 1: "height", 2: "width"},
        }
    )
    buffer = io.BytesIO()
    sample = torch.zeros(1, 3, *sample_size)
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (sample,),
            buffer,
            input_names=["input"],
            output_names=list(outputs),
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, **outputs},
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
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty (0 bytes), not an ONNX model")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable ONNX model ({exc})") from exc
    props = {p.key: p.value for p in proto.metadata_props}
    if "segmnv3.classes" not in props:
        raise ValueError(f"{path}: no segmnv3 metadata (was it written by tools/export_seg.py?)")
    return {k.removeprefix("segmnv3."): json.loads(v) for k, v in props.items()
            if k.startswith("segmnv3.")}  # fmt: skip


def graph_index(graph) -> tuple[dict, dict]:
    """An ONNX graph's index: the node producing each tensor, and the nodes reading it."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return producer, consumers


def check_threads(num_threads: int | None) -> None:
    """``num_threads`` is None (every core) or a count >= 1."""
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ValueError(f"num_threads {num_threads!r}: give a thread count >= 1, or None for "
                         "every core")  # fmt: skip


def ort_session(model: str | Path | bytes, device: str = "cpu", num_threads: int | None = None):
    """An ONNX Runtime session with full graph optimisation (CUDA provider when asked)."""
    import onnxruntime as ort

    check_threads(num_threads)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        options.intra_op_num_threads = num_threads
    # Worker threads that spin after a run take the cores from segmnv3's own work between
    # runs (label upsampling, drawing): Segmenter.predict on the demo model at 1024×512,
    # interleaved, 57-66 ms without spinning against 71-73 ms with it (int8: 50-57 vs 54-68).
    # With Segmenter's torch work on one thread (Zen 5), spinning made predict 5-15 % faster
    # but the video pipeline slower (29.2-29.5 frames/s against 30.4-32.3): it stays off.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
    per size (max abs logit difference, the logits' largest magnitude, argmax agreement) and
    raises if a bound fails. The difference is bounded relative to the logits' scale
    (``max_diff × max(1, max |logit|)``): float32 rounding grows with the values, and a
    trained model's logits reach tens."""
    model = model.cpu().eval()
    g = torch.Generator().manual_seed(seed)
    rows = []
    for h, w in sizes:
        x = torch.randn(2, 3, h, w, generator=g)
        with torch.no_grad():
            ref = model(x)["out"]
        logits, labels = session.run(["logits", "labels"], {"input": x.numpy()})
        diff = float(np.abs(logits - ref.numpy()).max())
        scale = float(ref.abs().max())
        agree = float((labels == ref.argmax(1).numpy()).mean())
        rows.append({"size": [h, w], "max_abs_diff": diff, "max_abs_logit": scale,
                     "argmax_agreement": agree})  # fmt: skip
    bad = [r for r in rows if r["max_abs_diff"] > max_diff * max(1.0, r["max_abs_logit"])
           or r["argmax_agreement"] < min_agreement]  # fmt: skip
    if bad:
        raise AssertionError(
            f"ONNX Runtime differs from PyTorch (bounds: diff <= {max_diff} × max(1, max "
            f"|logit|), agreement >= {min_agreement}): {bad}"
        )
    return rows


def prune_graph(proto) -> None:
    """Drop the nodes whose outputs nobody reads (the rewrites leave some), then the
    initializers nothing uses."""
    graph = proto.graph
    wanted = {o.name for o in graph.output}
    while True:
        used = wanted | {name for node in graph.node for name in node.input}
        kept = [n for n in graph.node if any(out in used for out in n.output)]
        if len(kept) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(kept)
    inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def read_proto(model: str | Path | bytes):
    """An ONNX model's protobuf from a file or bytes; a file that is not one is named."""
    import onnx

    name = "the model bytes" if isinstance(model, bytes) else str(model)
    if not isinstance(model, bytes) and not Path(model).is_file():
        raise FileNotFoundError(f"ONNX model not found: {model}")
    if (len(model) if isinstance(model, bytes) else Path(model).stat().st_size) == 0:
        raise ValueError(f"{name}: file is empty (0 bytes), not an ONNX model")
    try:
        return onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ValueError(f"{name}: not a readable ONNX model ({type(exc).__name__})") from exc


def lowres_graph(model: str | Path | bytes) -> bytes:
    """The model without its full-resolution tail: the output is ``logits_lowres``, the
    head's logits before the final upsampling (uint8 in an int8 model), for
    :func:`segmnv3.postprocess.upsample_argmax` to turn into labels at a fraction of the
    tail's cost. A graph without that tail is returned unchanged."""
    import onnx

    proto = read_proto(model)
    graph = proto.graph
    producer, _ = graph_index(graph)
    resize = next((n for n in graph.node if n.op_type == "Resize" and
                   n.output[0] in ("logits", "logits_uint8")), None)  # fmt: skip
    if resize is None:
        return proto.SerializeToString()
    source = producer.get(resize.input[0])
    uint8 = source is not None and source.op_type == "QuantizeLinear"
    elem = onnx.TensorProto.UINT8 if uint8 else onnx.TensorProto.FLOAT
    identity = onnx.helper.make_node("Identity", [resize.input[0]], ["logits_lowres"])
    graph.node.append(identity)
    del graph.output[:]
    graph.output.append(onnx.helper.make_tensor_value_info("logits_lowres", elem, None))
    prune_graph(proto)
    return proto.SerializeToString()
