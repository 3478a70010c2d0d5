"""Exports for phones, checked in their own runtime before they are written: ExecuTorch's
``.pte`` (XNNPACK, ``export_seg.py --format executorch``) and LiteRT's ``.tflite``
(``--format tflite``), each fp32 and static int8 calibrated on real images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from ..checkpoint import load_source
from ..inference.export import check_targets
from ..inference.mobile import (
    MobileGraph,
    MobileSpec,
    PhoneBackend,
    card_path,
    check_size,
    make_card,
    require,
)
from ..inference.mobile_layers import Bound, by_op, named_failure
from ..inference.pte import ExecutorchBackend, lower_executorch, quantize_pt2e
from ..inference.tflite import (
    LITERT_EXTRA,
    LiteRTBackend,
    convert_tflite,
    convert_tflite_int8,
    delegate_report,
    float_tensors,
)
from ..io import write_bytes_atomic
from ..metrics import ConfusionMatrix
from ..postprocess import upsample_argmax
from .deploy import calibration_items

FP32_AGREEMENT, INT8_MIOU_DROP = 0.999, 0.5  # the checks a file must pass to be written


def _labels(out: torch.Tensor, spec: MobileSpec) -> np.ndarray:
    """Class ids at the file's size of a 1×H×W labels output or of 1×K×h×w logits."""
    if out.ndim == 3:
        return out[0].numpy().astype(np.uint8, copy=False)
    return upsample_argmax(out, spec.size)[0].numpy()


def _score(run, graph: MobileGraph, items, num_classes: int) -> tuple[list, float | None]:
    """Labels of ``run`` on each item at the file's size, and their mIoU where labelled."""
    cm, labels, labelled = ConfusionMatrix(num_classes), [], False
    h, w = graph.spec.size
    for image, mask in items:
        pred = _labels(run(graph.feed(image)), graph.spec)
        labels.append(pred)
        if mask is not None:
            labelled = True
            target = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
            cm.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(
                target.astype(np.int64)))  # fmt: skip
    return labels, (cm.compute()["mIoU"] if labelled else None)


SUFFIXES = {"executorch": ".pte", "tflite": ".tflite"}
NAMES = {"executorch": "an ExecuTorch", "tflite": "a LiteRT"}


def _require(fmt: str) -> None:
    if fmt == "executorch":
        require("executorch", "ExecuTorch")
    else:
        require("litert_torch", "litert-torch (LiteRT's converter)", LITERT_EXTRA)
        require("ai_edge_litert", "LiteRT (ai-edge-litert)", LITERT_EXTRA)


def _convert(fmt: str, module, example, batches=None) -> tuple[bytes, list[str]]:
    """The file's bytes and the compute left outside XNNPACK. ExecuTorch int8 takes the
    PT2E-quantized module; LiteRT int8 the float one and its calibration ``batches``."""
    if fmt == "executorch":
        return lower_executorch(module, example)
    if batches is not None:
        return convert_tflite_int8(module, example, batches), []
    return convert_tflite(module, example), []


def _step(fmt: str, precision: str):
    """What is tried on each submodule to find the one that fails alone."""
    if precision == "int8" and fmt == "executorch":
        return lambda m, a, k: _convert(fmt, quantize_pt2e(Bound(m, k), a, [a]), a)
    if precision == "int8":
        return lambda m, a, k: _convert(fmt, Bound(m, k), a, [a])
    return lambda m, a, k: _convert(fmt, Bound(m, k), a)


def _named(what: str, graph, step, run, log):
    """``run()``; when the exporter fails, an error naming the layer that fails alone."""
    try:
        return run()
    except ImportError:  # a broken install, not a layer: no layer to name
        raise
    except Exception as exc:  # noqa: BLE001  (the exporters raise anything)
        log(f"{what} failed ({type(exc).__name__}): trying each layer alone to name it…")
        raise named_failure(what, graph, (graph.example(),), step, exc) from exc


def _lower(fmt: str, graph, module, precision: str, log,
           batches=None) -> tuple[bytes, PhoneBackend, list]:  # fmt: skip
    """The file's bytes, a backend running them, and the compute left outside XNNPACK."""
    _require(fmt)
    what = (
        f"{'lowering to ExecuTorch' if fmt == 'executorch' else 'converting to LiteRT'} "
        f"({precision})"
    )
    data, outside = _named(what, graph, _step(fmt, precision),
                           lambda: _convert(fmt, module, graph.example(), batches),
                           log)  # fmt: skip
    return data, ExecutorchBackend if fmt == "executorch" else LiteRTBackend, outside


def export_mobile(
    checkpoint,
    output,
    *,
    fmt="executorch",
    weights=None,
    size=(512, 1024),
    layout="nhwc",
    normalized=False,
    labels_out=False,
    int8=False,
    calib="dataset:val",
    calib_count=32,
    overwrite=False,
    log=print,
) -> dict:
    """Write ``output`` (fp32) and with ``int8`` ``<stem>.int8.pte``/``.int8.tflite``, each
    with its card, after running it in its own runtime against PyTorch on real images: fp32
    labels agree on ≥ 99.9 % of pixels; int8 keeps mIoU within 0.5 of fp32 on images
    calibration never saw."""
    output, suffix = Path(output), SUFFIXES[fmt]
    if output.suffix != suffix:
        raise ValueError(f"--output {output}: {NAMES[fmt]} file ends in {suffix}")
    int8_path = output.with_name(output.stem + ".int8" + suffix)
    files = [output, card_path(output)] + [int8_path, card_path(int8_path)] * int8
    check_targets(files, checkpoint, overwrite)
    loaded = load_source(checkpoint, weights)
    model = loaded.model.eval().float()
    spec = MobileSpec.of_format(fmt, check_size(size, model.backbone.output_stride), layout,
                                normalized, "labels" if labels_out else "logits")  # fmt: skip
    graph = MobileGraph(model, spec, loaded.preprocessing.mean, loaded.preprocessing.std, fmt)
    items = calibration_items(calib, loaded.config, 2 * calib_count, loaded.classes)
    calibration, held_out = items[:calib_count], items[calib_count:]
    if int8 and not any(mask is not None for _, mask in held_out):
        raise ValueError(f"--int8 is scored on labelled images calibration never saw: give "
                         f"--calib a labelled set of more than --calib-count ({calib_count}) "
                         "images")  # fmt: skip
    held_out = held_out or items  # fp32 alone: every image checks it
    with torch.no_grad():
        # PyTorch fp32's labels: the logits bilinearly upsampled, then their argmax
        reference = _score(graph.eval().logits, graph, held_out, len(loaded.classes))
    report: dict = {"size": list(spec.size), "images_checked": len(held_out)}
    report["fp32"] = _export_one(fmt, loaded, graph, graph, "fp32", output, held_out, reference,
                                 log)  # fmt: skip
    if int8:
        report["int8"] = _export_int8(fmt, loaded, graph, calibration, int8_path, held_out,
                                      reference, log)  # fmt: skip
    return report


def _export_int8(fmt, loaded, graph, calibration, path, held_out, reference, log) -> dict:
    """ExecuTorch: PT2E with the XNNPACK quantizer, then lowered. LiteRT: converted with its
    activations split, then quantized by ai-edge-quantizer (see :mod:`..inference.tflite`)."""
    _require(fmt)
    batches = [graph.feed(img) for img, _ in calibration]
    if fmt == "tflite":
        return _export_one(fmt, loaded, graph, graph, "int8", path, held_out, reference, log,
                           batches=batches)  # fmt: skip
    kept: list[str] = []
    quantized = _named("quantizing (PT2E, XNNPACK quantizer)", graph,
                       lambda m, a, k: quantize_pt2e(Bound(m, k), a, [a]),
                       lambda: quantize_pt2e(graph, graph.example(), batches, kept),
                       log)  # fmt: skip
    return _export_one(fmt, loaded, graph, quantized, "int8", path, held_out, reference, log,
                       kept)  # fmt: skip


def _export_one(fmt, loaded, graph, module, precision, path, held_out, reference, log,
                kept=None, batches=None) -> dict:  # fmt: skip
    """Lower ``module``, run the file in its runtime on ``held_out``, check it against
    PyTorch fp32's ``reference`` (labels, mIoU), and only then write it and its card."""
    example, (ref_labels, ref_miou) = graph.example(), reference
    pte, runtime, outside = _lower(fmt, graph, module, precision, log, batches)
    checks: dict = {"outside_delegate": outside}
    if kept is not None:  # what the quantizer left in float, by layer
        checks["float_ops"] = kept
    p = loaded.preprocessing
    card = make_card(graph.spec, fmt=fmt, precision=precision, classes=loaded.classes,
                     palette=loaded.palette, mean=p.mean, std=p.std, checks=checks)  # fmt: skip
    backend = runtime(pte, card)
    if fmt == "tflite":
        partitions, left = delegate_report(backend.interpreter)
        outside += left
        checks.update(xnnpack_partitions=partitions)
        if precision == "int8":
            checks["float_ops"] = float_tensors(backend.interpreter)
        card["outputs"][0].update(backend.output_card())
        if partitions != 1:
            outside.append(f"{partitions} XNNPACK partitions: ops between them run outside")
    labels, miou = _score(backend.run, graph, held_out, len(loaded.classes))
    agree = float(np.mean([(a == b).mean() for a, b in zip(labels, ref_labels, strict=True)]))
    checks.update(label_agreement=round(agree, 6), images=len(held_out))
    if miou is not None:
        checks.update(mIoU=round(100 * miou, 2), fp32_pytorch_mIoU=round(100 * ref_miou, 2))
    _verdict(precision, path, checks, miou, ref_miou)
    out = backend.run(example)
    card["outputs"][0]["shape"] = list(out.shape)
    if fmt == "executorch":
        card["outputs"][0]["dtype"] = str(out.dtype).removeprefix("torch.")
    write_bytes_atomic(path, pte)
    write_bytes_atomic(card_path(path), json.dumps(card, indent=2).encode())
    scored = f", mIoU {100 * miou:.2f} (PyTorch fp32 {100 * ref_miou:.2f})" if miou else ""
    where = f"outside the XNNPACK delegate: {', '.join(outside)}" if outside else (
        "every compute node in the XNNPACK delegate")  # fmt: skip
    runtime_name = "ExecuTorch" if fmt == "executorch" else "LiteRT"
    where += f" (checked in {runtime_name})"
    log(f"wrote {path} ({len(pte) / 1e6:.1f} MB, {precision}) and {card_path(path).name}: "
        f"labels agree with PyTorch fp32 on {100 * agree:.2f} % of pixels of {len(held_out)} "
        f"images{scored}; {where}")  # fmt: skip
    if checks.get("float_ops"):
        log(f"  kept in float by the quantizer: {by_op(checks['float_ops'])} (by layer in the "
            "card's checks.float_ops)")  # fmt: skip
    return {"file": str(path), "MB": round(len(pte) / 1e6, 2), **checks}


def _verdict(precision: str, path: Path, checks: dict, miou, ref_miou) -> None:
    """Raise, writing nothing, when a file fails its check."""
    if precision == "fp32" and checks["label_agreement"] < FP32_AGREEMENT:
        raise ValueError(f"{path} not written: its labels agree with PyTorch on only "
                         f"{100 * checks['label_agreement']:.2f} % of pixels (needs "
                         f"{100 * FP32_AGREEMENT:.1f} %)")  # fmt: skip
    if precision == "int8" and miou is not None and ref_miou - miou > INT8_MIOU_DROP / 100:
        raise ValueError(
            f"{path} not written: int8 mIoU {100 * miou:.2f} is more than {INT8_MIOU_DROP} "
            f"below fp32's {100 * ref_miou:.2f} on images calibration never saw (calibrate "
            "on more or more varied images)"
        )
