"""Phone files timed here: ExecuTorch's .pte and LiteRT's .tflite (both XNNPACK), fp32 and
int8, beside ONNX Runtime fp32 and OpenVINO on the same network (low-resolution logits out)
in one interleaved run, with file sizes and the runtime's peak memory. XNNPACK's x86 kernels
are not a phone's: these figures are this CPU's. LiteRT rows need ``segmnv3[litert]``.

``python -m segmnv3.perf.mobile FILE`` runs the file once in a fresh process and prints its
peak resident memory in MiB.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ..checkpoint import load_model
from ..inference import Segmenter
from ..inference.mobile import MobileGraph, MobileSpec, as_input, make_card
from ..inference.onnx import export_onnx
from ..inference.pte import (
    ExecutorchBackend,
    lower_executorch,
    quantize_pt2e,
    set_executorch_threads,
)
from ..preprocess import Preprocessing
from ..timing import interleaved_latency, paired_difference
from .deployed import peak_rss_mib, sample_scene


def _litert() -> bool:
    return all(importlib.util.find_spec(m) for m in ("litert_torch", "ai_edge_quantizer"))


def _files(loaded, size, labels: bool = True) -> dict[str, tuple[bytes, dict]]:
    """``"<runtime> <precision>[ labels]"`` → the file of ``loaded`` at ``size`` and its card,
    logits out and, with ``labels``, labels out (int8 calibrated on sample scenes of the
    file's size: speed does not depend on what they show)."""
    p, out = loaded.preprocessing, {}
    formats = ("executorch", "tflite") if _litert() else ("executorch",)
    for output in ("logits", "labels") if labels else ("logits",):
        for fmt in formats:
            spec = MobileSpec.of_format(fmt, size, output=output)
            graph = MobileGraph(loaded.model.eval(), spec, p.mean, p.std, fmt)
            calib = [graph.feed(sample_scene(*size, i)) for i in range(2, 6)]
            for precision in ("fp32", "int8"):
                runtime = "executorch" if fmt == "executorch" else "litert"
                name = f"{runtime} {precision}" + (" labels" if output == "labels" else "")
                card = make_card(graph.spec, fmt=fmt, precision=precision,
                                 classes=loaded.classes, palette=loaded.palette, mean=p.mean,
                                 std=p.std, checks={})  # fmt: skip
                out[name] = (_make(fmt, precision, graph, calib), card)
    return out


def _make(fmt: str, precision: str, graph: MobileGraph, calib: list) -> bytes:
    from ..inference.tflite import convert_tflite, convert_tflite_int8

    example = graph.example()
    if fmt == "tflite":
        if precision == "int8":
            return convert_tflite_int8(graph, example, calib)
        return convert_tflite(graph, example)
    if precision == "int8":
        return lower_executorch(quantize_pt2e(graph, example, calib), example)[0]
    return lower_executorch(graph, example)[0]


def _backend(name: str, data: bytes, card: dict, threads: int):
    if name.startswith("executorch"):
        set_executorch_threads(threads)
        return ExecutorchBackend(data, card)
    from ..inference.tflite import LiteRTBackend

    return LiteRTBackend(data, card, num_threads=threads)


MOBILE_SIZES = ((512, 512), (512, 1024))  # the two sizes, H×W


def mobile_rows(checkpoint, sizes=MOBILE_SIZES, threads=(1, 2), repeats=6,
                memory=True, labels=True, log=print) -> list[dict]:  # fmt: skip
    """Median ms of each file's network (low-res logits out; with ``labels`` also the files
    with labels out, and what that adds) per size and thread count, and its ratio to ONNX
    Runtime fp32 on the same network and image, in one interleaved run."""
    loaded = load_model(checkpoint)
    p, rows = loaded.preprocessing, []
    onnx = export_onnx(loaded.model, None, classes=loaded.classes, palette=loaded.palette,
                       lowres=True, mean=p.mean, std=p.std)  # fmt: skip
    for h, w in sizes:
        files = _files(loaded, (h, w), labels)
        image = sample_scene(h, w, 1)
        prepared = Preprocessing(None, p.mean, p.std)(image)[None]
        for n in threads:
            fns = {}
            for backend in ("onnxruntime", "openvino"):
                seg = Segmenter.on_runtime(onnx, loaded.classes, loaded.palette, p,
                                           backend=backend, num_threads=n)  # fmt: skip
                run = seg.backend.lowres_logits
                fns[f"{backend} {seg.precision}"] = lambda r=run, x=prepared: r(x)
            for name, (data, card) in files.items():
                phone = _backend(name, data, card, n)
                x = as_input(image, phone.spec, phone.scale, phone.shift)
                fns[name] = lambda e=phone, x=x: e.run(x)
            times = interleaved_latency(fns, repeats)
            base = times["onnxruntime fp32"]
            for name, t in times.items():
                mb = len(files[name][0]) / 1e6 if name in files else None
                row = {"size": f"{w}x{h}", "threads": n, "path": name, "ms": round(1000 * t, 1),
                       "ratio_to_ort_fp32": round(t / base, 3),
                       "MB": None if mb is None else round(mb, 1)}  # fmt: skip
                extra = ""
                if name.endswith(" labels"):  # what labels out adds to the same file's logits
                    added = paired_difference(fns[name[:-7]], fns[name])
                    row["over_logits_ms"] = round(1000 * added, 1)
                    extra = f", {row['over_logits_ms']:+.1f} ms over logits out (paired)"
                rows.append(row)
                log(
                    f"phone files, {w}×{h}, {n} thread(s): {name:<24} {1000 * t:7.1f} ms "
                    f"({t / base:.2f}× ONNX Runtime fp32)"
                    + (f", {mb:.1f} MB" if mb else "")
                    + extra
                )
        if memory:
            for name, (data, card) in files.items():
                peak = _peak_memory(data, card)
                rows.append({"size": f"{w}x{h}", "path": name, "peak_memory_mib": peak})
                log(f"peak memory of a process that runs the {name} file once at {w}×{h}: "
                    f"{peak:.0f} MiB")  # fmt: skip
    return rows


def _peak_memory(data: bytes, card: dict) -> float:
    suffix = ".pte" if card["format"] == "executorch" else ".tflite"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"m{suffix}"
        path.write_bytes(data)
        Path(tmp, f"m{suffix}.json").write_text(json.dumps(card))
        cmd = [sys.executable, "-m", "segmnv3.perf.mobile", str(path)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    return float(res.stdout.split()[-1])


if __name__ == "__main__":
    seg = Segmenter.from_checkpoint(sys.argv[1])
    h, w = seg.backend.spec.size
    seg.predict(sample_scene(h, w, 1))
    print(f"{peak_rss_mib():.1f}")
