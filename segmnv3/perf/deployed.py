"""The deployed path: ``Segmenter.predict`` end to end on an image with real content, per
runtime and precision, beside torchvision's eager model; and each runtime's peak memory.

``python -m segmnv3.perf.deployed BACKEND PRECISION HEIGHT WIDTH`` runs one prediction in a
fresh process and prints its peak resident memory in MiB (what :func:`peak_memory` reads).
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from ..checkpoint import load_model
from ..data.synthetic import SyntheticSegmentation
from ..inference import Segmenter
from ..models import build_model
from ..postprocess import interpolated_fraction
from ..timing import interleaved_latency
from .latency import _torchvision_predict, runtime_paths, segmenters, torchvision_model


def sample_scene(height: int, width: int, index: int = 0) -> np.ndarray:
    """A synthetic val scene (the demo's kind of content: regions, boundaries) at a size."""
    return SyntheticSegmentation("val", num_samples=index + 1, size=(height, width)).load(index)[0]


def end_to_end(
    checkpoint: str | Path,
    sizes=((512, 1024),),
    threads: int | None = None,
    repeats: int = 6,
    log=print,
) -> list[dict]:
    """Median ms of ``Segmenter.predict`` (preprocess, forward, labels; decoding excluded)
    on a sample scene through ``checkpoint``, per runtime and precision, and of
    torchvision's eager model of the same head doing the same work (its full-tail network:
    the one it builds), with their ratio."""
    loaded = load_model(checkpoint)
    head = loaded.config.model.head
    resize = loaded.config.data.eval_resize
    prep = Segmenter(None, loaded.classes, loaded.palette, resize=resize).prepare
    calib = [prep(sample_scene(256, 512, i))[None] for i in range(2, 6)]
    segs = segmenters(loaded.model, loaded.classes, loaded.palette, threads=threads,
                      resize=resize, calibration=calib)  # fmt: skip
    first = next(iter(segs.values()))
    tv = torchvision_model(head if head != "fcn" else "lraspp", len(loaded.classes))
    rows = []
    for h, w in sizes:
        image = sample_scene(h, w, 1)
        fns = {"torchvision eager": lambda i=image: _torchvision_predict(tv, i)}
        fns.update({name: (lambda s=seg, i=image: s.predict(i)) for name, seg in segs.items()})
        times = interleaved_latency(fns, repeats)
        low = first.backend.lowres_logits(first.prepare(image)[None])
        cells = interpolated_fraction(low)
        for name, t in times.items():
            row = {"size": f"{w}x{h}", "path": name, "ms": round(1000 * t, 1),
                   "ratio_to_torchvision": round(t / times["torchvision eager"], 3),
                   "cells_interpolated": round(cells, 4)}  # fmt: skip
            rows.append(row)
            ratio = row["ratio_to_torchvision"]
            log(f"end to end, {Path(checkpoint).name}, a sample scene {w}×{h}: {name:<28} "
                f"{row['ms']:7.1f} ms ({ratio:.2f}× torchvision)")  # fmt: skip
    return rows


DEPLOYED_SUFFIXES = (".onnx", ".pte", ".tflite")


def deployed_file(path: str | Path, sizes=((512, 1024),), threads: int | None = None,
                  repeats: int = 6, log=print) -> list[dict]:  # fmt: skip
    """Median ms of ``Segmenter.predict`` through an exported file (.onnx, or a phone's
    .pte/.tflite on its own runtime): exactly the file that ships, end to end."""
    seg = Segmenter.from_checkpoint(path, num_threads=threads)
    rows = []
    for h, w in sizes:
        image = sample_scene(h, w, 1)
        t = interleaved_latency({"file": lambda i=image: seg.predict(i)}, repeats)["file"]
        rows.append({"size": f"{w}x{h}", "path": f"{seg.backend_name} {seg.precision}",
                     "file": str(path), "ms": round(1000 * t, 1)})  # fmt: skip
        log(f"end to end, {Path(path).name} on {seg.backend_name} {seg.precision}, a sample "
            f"scene {w}×{h}: {1000 * t:.1f} ms")  # fmt: skip
    return rows


def peak_memory(size=(1024, 2048), head: str = "lraspp", log=print) -> dict[str, float]:
    """Peak resident memory (MiB) of a fresh process that builds ``head`` (full tail, 21
    classes) on each runtime and precision and predicts one ``size`` image."""
    out = {}
    for backend, precision in runtime_paths(int8=False):
        cmd = [sys.executable, "-m", "segmnv3.perf.deployed", backend, precision,
               str(size[0]), str(size[1]), head]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
        out[f"{backend} {precision}"] = float(res.stdout.split()[-1])
        log(f"peak memory, {head} {size[1]}×{size[0]}, {backend} {precision}: "
            f"{out[f'{backend} {precision}']:.0f} MiB")  # fmt: skip
    return out


def _one_prediction(backend: str, precision: str, h: int, w: int, head: str) -> float:
    model = build_model(head, 21, reduced_tail=False).eval()
    seg = Segmenter.from_model(model, [str(i) for i in range(21)], [(0, 0, 0)] * 21,
                               backend=backend, precision=precision)  # fmt: skip
    seg.predict(cv2.resize(sample_scene(256, 512), (w, h)))
    return peak_rss_mib()


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss over from the parent through fork and exec, so a child would report the
    parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB


if __name__ == "__main__":
    backend_, precision_, h_, w_, head_ = sys.argv[1:6]
    print(f"{_one_prediction(backend_, precision_, int(h_), int(w_), head_):.1f}")
