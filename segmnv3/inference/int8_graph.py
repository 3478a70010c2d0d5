"""The ONNX graph rewrites that keep a quantized MobileNetV3 segmentation graph in uint8
(hard sigmoid as uint8 Clips, the uint8 upsampling tail) and the float hard swish an
OpenVINO graph fuses (what :mod:`segmnv3.inference.int8` applies; see its docstring)."""

from __future__ import annotations

import numpy as np

from .onnx import graph_index, prune_graph


def _scalar(initializers: dict, name: str):
    from onnx import numpy_helper

    tensor = initializers.get(name)
    value = None if tensor is None else numpy_helper.to_array(tensor)
    return value if value is not None and value.size == 1 else None


def uint8_hard_sigmoid(proto) -> int:
    """Compute each ``hardsigmoid(x) = clip(x + 3, 0, 6) / 6`` on the uint8 ``x`` it reads.

    With ``x = s·(q − z)``, ``clip(x + 3, 0, 6)`` is ``s·(clip(q, lo, hi) − lo)`` where
    ``lo = z − 3/s`` and ``hi = z + 3/s``: the hard sigmoid is one uint8 Clip whose result
    is read with scale ``1/(hi − lo)`` and zero point ``lo`` (the breakpoints rounded to
    the nearest quantization step). That replaces a DequantizeLinear, a float HardSigmoid
    and a QuantizeLinear over the whole feature map, and hard-swish's Mul then runs as
    ONNX Runtime's QLinearMul. Where the calibrated range of ``x`` does not reach ±3, it
    is widened to do so (every QuantizeLinear/DequantizeLinear of ``x`` shares the change).
    Returns the number of HardSigmoid nodes rewritten; the graph is changed in place.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    producer, consumers = graph_index(graph)
    replaced: dict[int, object] = {}  # id(HardSigmoid) -> Clip
    removed: set[int] = set()
    for hs in [n for n in graph.node if n.op_type == "HardSigmoid"]:
        match = _quantized_hard_sigmoid(hs, inits, producer, consumers)
        if match is None:
            continue
        dq, q_out, readers, (s, z) = match
        lo, hi = max(0, round(z - 3 / s)), min(255, round(z + 3 / s))
        if hi - lo < 2:
            continue
        name = hs.output[0] + "_uint8"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.uint8(lo), name + "_lo"),
                numpy_helper.from_array(np.uint8(hi), name + "_hi"),
                numpy_helper.from_array(np.float32(1 / (hi - lo)), name + "_scale"),
            ]
        )
        replaced[id(hs)] = helper.make_node(
            "Clip", [dq.input[0], name + "_lo", name + "_hi"], [name], name=name + "_Clip"
        )
        for r in readers:
            r.input[:] = [name, name + "_scale", name + "_lo"]
        removed |= {id(hs), id(q_out)}
        if len(consumers[hs.input[0]]) == 1:  # the float x only fed the hard sigmoid
            removed.add(id(dq))
    _splice(graph, replaced, removed)
    return len(replaced)


def _quantized_hard_sigmoid(hs, inits: dict, producer: dict, consumers: dict):
    """For a MobileNetV3 HardSigmoid between DequantizeLinear and QuantizeLinear (read only
    by DequantizeLinears): that DQ, the Q, its readers and x's (scale, zero point), widened
    to reach ±3. None for any other HardSigmoid."""
    attrs = {a.name: a.f for a in hs.attribute}
    if abs(attrs.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(attrs.get("beta", 0.5) - 0.5) > 1e-6:
        return None  # not the MobileNetV3 hard sigmoid
    dq, after = producer.get(hs.input[0]), consumers.get(hs.output[0], [])
    if dq is None or dq.op_type != "DequantizeLinear" or len(after) != 1:
        return None
    q_out = after[0]
    readers = consumers.get(q_out.output[0], [])
    if q_out.op_type != "QuantizeLinear" or not all(
        r.op_type == "DequantizeLinear" for r in readers
    ):
        return None
    scale, zero = _scalar(inits, dq.input[1]), _scalar(inits, dq.input[2])
    if scale is None or zero is None or zero.dtype != np.uint8:
        return None
    widened = _reach_three(float(scale), int(zero), dq, inits, producer, consumers)
    if widened is None:
        return None  # its parameters are not shared the usual way: leave this one
    return dq, q_out, readers, widened


def _splice(graph, replaced: dict[int, object], removed: set[int]) -> None:
    """Put each replacement before the node it replaces and drop the removed nodes."""
    nodes = []
    for node in graph.node:
        if id(node) in replaced:
            nodes.append(replaced[id(node)])
        if id(node) not in removed:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def _reach_three(s: float, z: int, dq, inits: dict, producer: dict, consumers: dict):
    """The scale and zero point of ``x`` (read by DequantizeLinear ``dq``), widened where
    its calibrated range does not reach ±3 (every Quantize/DequantizeLinear of ``x`` shares
    the change), or None where its parameters are not shared the usual way."""
    from onnx import numpy_helper

    if -s * z <= -3 and s * (255 - z) >= 3:
        return s, z
    x_q = dq.input[0]
    q_in = producer.get(x_q)
    if q_in is None or any(
        n.op_type in ("QuantizeLinear", "DequantizeLinear")
        and list(n.input[1:3]) != list(dq.input[1:3])
        for n in [q_in, *consumers[x_q]]
    ):
        return None
    lo_x, hi_x = min(-s * z, -3.0), max(s * (255 - z), 3.0)
    s = (hi_x - lo_x) / 255
    z = int(np.clip(round(-lo_x / s), 0, 255))
    inits[dq.input[1]].CopyFrom(numpy_helper.from_array(np.float32(s), dq.input[1]))
    inits[dq.input[2]].CopyFrom(numpy_helper.from_array(np.uint8(z), dq.input[2]))
    return s, z


def uint8_tail(proto) -> None:
    """Run the final upsampling and the argmax on the quantized uint8 logits.

    The quantizer leaves ``DequantizeLinear → Resize → logits → ArgMax`` in float, and that
    full-resolution tail then costs as much as the whole int8 network. Upsampling the uint8
    values instead and taking the argmax there gives the same labels up to rounding
    (dequantization is increasing). The int8 model's only output is then ``labels``.
    """
    import onnx

    graph = proto.graph
    producer, _ = graph_index(graph)
    resize = next((n for n in graph.node if "logits" in n.output), None)
    if resize is None or resize.op_type != "Resize":
        return
    dq = producer.get(resize.input[0])
    if dq is None or dq.op_type != "DequantizeLinear":
        return
    new_resize = onnx.NodeProto()
    new_resize.CopyFrom(resize)
    new_resize.name = resize.name + "_uint8"
    new_resize.input[0] = dq.input[0]
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


def float_hard_swish(proto) -> int:
    """For OpenVINO: turn each hard-swish of the int8 file back into one ``HardSwish`` on
    its convolution's float output.

    The file is laid out for ONNX Runtime, where hard-swish runs as a uint8 Clip and a
    QLinearMul (:func:`uint8_hard_sigmoid`). OpenVINO instead fuses convolution, hard-swish
    and the next quantization into one int8 convolution when nothing is quantized between
    them; on the uint8 layout it runs each hard-swish as a separate int8 kernel (6.9 of
    31.6 ms on the demo model at 1024×512; 25.6 ms after this, and held-out mIoU 84.66
    instead of 84.50: one rounding fewer). Matches ``Mul(DQ(q), DQ(Clip(q, lo, hi)))``
    where ``q = Quantize(x)`` and the Clip is ``hardsigmoid`` on q's grid; the graph is
    changed in place. Returns the number of hard-swishes rewritten.
    """
    from onnx import helper

    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    producer, _ = graph_index(graph)
    replaced: dict[int, object] = {}
    for mul in (n for n in graph.node if n.op_type == "Mul"):
        pair = [producer.get(name) for name in mul.input]
        if not all(n is not None and n.op_type == "DequantizeLinear" for n in pair):
            continue
        for dq_x, dq_h in (pair, pair[::-1]):
            clip, q = producer.get(dq_h.input[0]), producer.get(dq_x.input[0])
            if (clip is None or clip.op_type != "Clip" or clip.input[0] != dq_x.input[0]
                    or q is None or q.op_type != "QuantizeLinear"):  # fmt: skip
                continue
            s, z = _scalar(inits, dq_x.input[1]), _scalar(inits, dq_x.input[2])
            lo, hi = (_scalar(inits, name) for name in clip.input[1:3])
            if s is None or z is None or lo is None or hi is None:
                continue
            s, z, lo, hi = float(s), int(z), int(lo), int(hi)
            if abs((z - lo) * s - 3) <= s and abs((hi - z) * s - 3) <= s:
                replaced[id(mul)] = helper.make_node(
                    "HardSwish", [q.input[0]], [mul.output[0]], name=mul.name + "_HardSwish"
                )
                break
    nodes = [replaced.get(id(n), n) for n in graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    prune_graph(proto)
    return len(replaced)
