"""Inference latency, side by side with torchvision's eager models in one process.

The median time of ``Segmenter.predict`` on an RGB uint8 image (preprocess, forward, labels
at the input's size) for each backend, and of torchvision's eager model doing the same work
(normalise, forward, argmax); and the label upsampling on its own.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..device import cpu_features
from ..inference import Segmenter, installed_backends
from ..inference.int8 import quantize_int8
from ..inference.onnx import export_onnx
from ..models import build_model, count_macs, count_parameters
from ..postprocess import interpolated_fraction, upsample_argmax
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from ..timing import interleaved_latency

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def torchvision_model(head: str, num_classes: int):
    """torchvision's eager model of ``head`` (random weights), the obvious alternative."""
    from torchvision.models import segmentation as tvs

    build = {"lraspp": tvs.lraspp_mobilenet_v3_large, "deeplabv3": tvs.deeplabv3_mobilenet_v3_large}
    return build[head](weights=None, weights_backbone=None, num_classes=num_classes).eval()


def _torchvision_predict(model, image: np.ndarray) -> np.ndarray:
    """The obvious torchvision code: to tensor, normalise, forward, argmax."""
    with torch.inference_mode():
        x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
        x = (x - MEAN) / STD
        return model(x[None])["out"].argmax(1)[0].byte().numpy()


def inference_table(
    heads=("lraspp", "deeplabv3"),
    sizes=((512, 1024), (1024, 2048)),
    num_classes: int = 21,
    repeats: int = 6,
    threads: int | None = None,
    int8: bool = True,
    log=print,
) -> list[dict]:
    """One row per head × tail setting × size × path, with the latency and the ratio to
    torchvision's eager model of the same head."""
    rng = np.random.default_rng(0)
    rows = []
    for head in heads:
        tv = torchvision_model(head, num_classes)
        for reduced in (False, True):
            model = build_model(head, num_classes, reduced_tail=reduced).eval()
            if not reduced:  # the same network as torchvision's: same weights too
                model.load_state_dict(tv.state_dict(), strict=True)
            classes = [str(i) for i in range(num_classes)]
            palette = [(i, i, i) for i in range(num_classes)]
            paths = segmenters(model, classes, palette, threads=threads, int8=int8)
            params = count_parameters(model)
            gmacs = count_macs(model, 512, 1024) / 1e9
            for h, w in sizes:
                image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                fns = {"torchvision eager": lambda m=tv, i=image: _torchvision_predict(m, i)}
                for path, seg in paths.items():
                    fns[f"segmnv3 {path}"] = lambda s=seg, i=image: s.predict(i)
                times = interleaved_latency(fns, repeats)
                name = f"{head} {'reduced' if reduced else 'full'} tail"
                base = times["torchvision eager"]
                for path, t in times.items():
                    rows.append(_row(name, params, gmacs, (h, w), path, t, base))
                    log(_format(rows[-1]))
    return rows


def runtime_paths(int8: bool = True) -> list[tuple[str, str]]:
    """Every (backend, precision) this machine runs at speed: bf16 where the CPU has it
    natively (PyTorch's emulation elsewhere is 8× slower than fp32 on an AVX2 CPU, measured,
    and OpenVINO would run fp32); int8 on each ONNX runtime."""
    paths = []
    for backend in installed_backends():
        precisions = ["fp32"]
        if cpu_features().bf16 and backend != "onnxruntime":
            precisions.append("bf16")
        if int8 and backend != "torch":
            precisions.append("int8")
        paths += [(backend, p) for p in precisions]
    return paths


def segmenters(
    model,
    classes,
    palette,
    *,
    threads: int | None = None,
    int8: bool = True,
    resize=None,
    calibration: list[np.ndarray] | None = None,
) -> dict[str, Segmenter]:
    """A Segmenter per :func:`runtime_paths` entry, named ``"<backend> <precision>"``; the
    int8 models are calibrated on ``calibration`` (prepared batches; random ones when None,
    which is fine for speed)."""
    onnx_bytes = export_onnx(model, None, classes=classes, palette=palette, resize=resize)
    int8_bytes = _int8_model(onnx_bytes, calibration) if int8 else None
    out = {}
    for backend, precision in runtime_paths(int8):
        source = model if backend == "torch" else int8_bytes if precision == "int8" else onnx_bytes
        out[f"{backend} {precision}"] = Segmenter.on_runtime(
            source, classes, palette, Preprocessing(resize), backend=backend,
            precision="fp32" if precision == "int8" else precision, num_threads=threads,
        )  # fmt: skip
    return out


def _int8_model(onnx_bytes: bytes, calibration: list[np.ndarray] | None = None) -> bytes:
    rng = np.random.default_rng(1)
    if calibration is None:  # speed does not depend on what the calibration images show
        calibration = [rng.standard_normal((1, 3, 256, 512)).astype(np.float32) for _ in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        fp32, q = Path(tmp) / "m.onnx", Path(tmp) / "m.int8.onnx"
        fp32.write_bytes(onnx_bytes)
        quantize_int8(fp32, q, iter(calibration))
        return q.read_bytes()


def _row(name, params, gmacs, size, path, seconds, base) -> dict:
    return {
        "model": name,
        "params": params,
        "gmacs_1024x512": round(gmacs, 2),
        "size": f"{size[1]}x{size[0]}",
        "path": path,
        "ms": round(1000 * seconds, 1),
        "ratio_to_torchvision": round(seconds / base, 3),
    }


def _format(r: dict) -> str:
    return (
        f"| {r['model']:<22} | {r['params'] / 1e6:5.2f} M | {r['gmacs_1024x512']:6.2f} | "
        f"{r['size']:>9} | {r['path']:<28} | {r['ms']:8.1f} | {r['ratio_to_torchvision']:5.2f}× |"
    )


TABLE_HEADER = (
    "| model                  | params  | GMACs  |      size | path                         |"
    "   median ms | vs tv |\n|---|---|---|---|---|---|---|"
)


def label_upsampling(size=(512, 1024), num_classes: int = 21, stride: int = 8, log=print) -> dict:
    """Milliseconds from low-resolution logits to full-resolution labels: segmnv3's
    ``upsample_argmax`` against ``F.interpolate(...).argmax(1)``, on three kinds of logits.

    The inference table's random models on random images predict one class everywhere,
    the cheapest case for ``upsample_argmax``; these cases show the rest of its range.
    """
    h, w = size[0] // stride, size[1] // stride
    g = torch.Generator().manual_seed(0)
    coarse = torch.randn(1, num_classes, h // 16, w // 16, generator=g) * 4
    cases = {
        "one class everywhere": torch.arange(num_classes, dtype=torch.float32)
        .view(1, -1, 1, 1)
        .expand(1, num_classes, h, w)
        .contiguous(),
        "regions (like a trained model)": F.interpolate(coarse, size=(h, w), mode="bilinear"),
        "noise (worst case)": torch.randn(1, num_classes, h, w, generator=g),
    }
    out = {}
    for name, low in cases.items():
        times = interleaved_latency(
            {
                "segmnv3": lambda x=low: upsample_argmax(x, size),
                "interpolate+argmax": lambda x=low: F.interpolate(
                    x, size=size, mode="bilinear"
                ).argmax(1),
            },
            repeats=6,
            settle=0,
        )
        out[name] = {k: round(1000 * v, 2) for k, v in times.items()}
        out[name]["cells_interpolated"] = round(interpolated_fraction(low), 4)
        log(
            f"labels from {num_classes}×{h}×{w} logits at {size[1]}×{size[0]}, {name}: "
            f"upsample_argmax {out[name]['segmnv3']:.1f} ms "
            f"({100 * out[name]['cells_interpolated']:.1f}% of cells interpolated), "
            f"interpolate+argmax {out[name]['interpolate+argmax']:.1f} ms"
        )
    return out
