"""Deploying a trained model, checked: the ONNX export against PyTorch, and the static int8
copy calibrated on real images and scored against fp32 on images the calibration never saw
(``export_seg.py``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .. import hub
from ..checkpoint import export_weights, load_checkpoint, load_model, load_source
from ..data import FolderSegmentation
from ..device import int8_weight_bits
from ..inference import Segmenter, installed_backends
from ..inference.export import check_targets, export_checked_onnx
from ..inference.int8 import quantize_int8
from ..io import IMAGE_EXTENSIONS, read_image
from ..metrics import ConfusionMatrix
from ..timing import interleaved_latency
from .builders import eval_dataset


def calibration_items(spec: str, config, count: int, classes: list[str]):
    """``(image, mask or None)`` pairs for calibration: a folder of images, a folder dataset
    (``images/`` + ``masks/``), or ``dataset[:split]`` for the checkpoint's own dataset."""
    if spec == "dataset" or spec.startswith("dataset:"):
        split = spec.partition(":")[2] or None
        ds = eval_dataset(config, split)
        ds.transforms = None
        return [ds.load(i) for i in range(min(count, len(ds)))]
    root = Path(spec)
    if (root / "images").is_dir() and (root / "masks").is_dir():
        ds = FolderSegmentation(root, classes=classes)
        return [ds.load(i) for i in range(min(count, len(ds)))]
    if not root.is_dir():
        raise FileNotFoundError(f"--calib: {root} is neither a folder nor 'dataset[:split]'")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:count]
    if not files:
        raise FileNotFoundError(f"--calib: no images in {root}")
    return [(read_image(p), None) for p in files]


def _miou(segmenter: Segmenter, items, num_classes: int) -> float:
    cm = ConfusionMatrix(num_classes)
    for image, mask in items:
        pred = segmenter.predict(image)
        cm.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(mask.astype(np.int64)))
    return cm.compute()["mIoU"]


def export_checkpoint(
    checkpoint: str | Path | None,
    output: str | Path,
    *,
    weights: str | None = None,
    check_sizes=((64, 64), (97, 131), (256, 512)),
    int8: bool = False,
    calib: str | None = None,
    calib_count: int = 32,
    weight_bits: int | str = 7,
    speed_size: tuple[int, int] = (512, 1024),
    num_threads: int | None = None,
    overwrite: bool = False,
    log=print,
) -> dict:
    """Export ``checkpoint`` to ONNX at ``output``, check it against PyTorch (raising when
    the figures are out of bounds) and, with ``int8``, write ``<output stem>.int8.onnx``
    calibrated on ``calib`` and compare speed (and mIoU when labels exist)."""
    if int8 and calib is None:
        raise ValueError("--int8 needs --calib DIR_OR_DATASET (real images to calibrate on)")
    output = Path(output)
    int8_path = output.with_suffix(".int8.onnx")
    check_targets([output] + [int8_path] * int8, checkpoint, overwrite)
    loaded = load_source(checkpoint, weights)
    rows = export_checked_onnx(loaded, output, check_sizes=check_sizes, num_threads=num_threads,
                               log=log)  # fmt: skip
    report: dict = {"onnx": str(output), "check": rows}
    if int8:
        report.update(quantize_and_compare(loaded, output, int8_path, calib, calib_count,
                                           weight_bits, speed_size, num_threads, log))  # fmt: skip
    return report


def quantize_and_compare(loaded, output, int8_path, calib, calib_count, weight_bits,
                         speed_size, num_threads, log=print) -> dict:  # fmt: skip
    """Quantize the fp32 file ``output`` to ``int8_path`` on ``calib_count`` images of
    ``calib``, then compare the two on the next ``calib_count`` (never seen by the
    calibration, which would flatter int8)."""
    items = calibration_items(calib, loaded.config, 2 * calib_count, loaded.classes)
    calibration, held_out = items[:calib_count], items[calib_count:]
    bits = int8_weight_bits(weight_bits)
    prepare = loaded.preprocessing
    quantize_int8(output, int8_path, (prepare(img)[None] for img, _ in calibration),
                  weight_bits=bits)  # fmt: skip
    log(f"quantized {int8_path} on {len(calibration)} images, {bits}-bit weights "
        f"({int8_path.stat().st_size / 1e6:.1f} MB)")  # fmt: skip
    report = {"int8_weight_bits": bits, "int8": str(int8_path)}
    report.update(compare_int8(loaded, output, int8_path, calibration, held_out, speed_size,
                               num_threads, log))  # fmt: skip
    return report


def compare_int8(loaded, fp32_path, int8_path, calibration, held_out, speed_size,
                 num_threads, log=print) -> dict:  # fmt: skip
    """fp32 against int8 on each installed ONNX runtime: latency on a real image, and mIoU
    on the held-out labelled images (never the calibration ones, which would flatter int8)."""
    runtimes = [b for b in installed_backends() if b != "torch"]
    segs = {}
    for backend in runtimes:
        for precision, path in (("fp32", fp32_path), ("int8", int8_path)):
            segs[f"{backend} {precision}"] = Segmenter.on_runtime(
                path,
                loaded.classes,
                loaded.palette,
                loaded.preprocessing,
                backend=backend,
                precision="fp32",
                num_threads=num_threads,
            )
    # Timed on a real image (the first calibration image, resized): the labels' upsampling
    # costs what the image's boundaries make it cost, so random pixels would mislead.
    image = cv2.resize(calibration[0][0], (speed_size[1], speed_size[0]))
    times = interleaved_latency({k: (lambda s=s: s.predict(image)) for k, s in segs.items()},
                                repeats=9)  # fmt: skip
    out: dict = {"seconds": times}
    for backend in runtimes:
        t32, t8 = times[f"{backend} fp32"], times[f"{backend} int8"]
        log(f"{backend} at {speed_size[1]}×{speed_size[0]} (a calibration image, resized): "
            f"fp32 {1000 * t32:.1f} ms, int8 {1000 * t8:.1f} ms (int8 takes {t8 / t32:.2f}× "
            "the fp32 time)")  # fmt: skip
    first = runtimes[0]
    out["fp32_seconds"], out["int8_seconds"] = times[f"{first} fp32"], times[f"{first} int8"]
    labelled = [(img, m) for img, m in held_out if m is not None]
    if not labelled:
        log("no held-out labelled images (give --calib a labelled set with more than "
            "--calib-count images): mIoU not compared")  # fmt: skip
        return out
    n = len(loaded.classes)
    out["mIoU"] = {k: _miou(s, labelled, n) for k, s in segs.items()}
    out["fp32_mIoU"], out["int8_mIoU"] = out["mIoU"][f"{first} fp32"], out["mIoU"][f"{first} int8"]
    figures = ", ".join(f"{k} {100 * v:.2f}" for k, v in out["mIoU"].items())
    log(f"mIoU on {len(labelled)} held-out images (not used for calibration): {figures}")
    return out


def share_checkpoint(checkpoint, out_dir, *, name=None, license="", log=print) -> dict:
    """``--format weights``: the weights file and card of a checkpoint, with the metrics of
    its best evaluation (``best_miou`` of a training checkpoint)."""
    loaded = load_model(checkpoint)
    state = load_checkpoint(checkpoint)
    metrics = {}
    if isinstance(state.get("best_miou"), float) and state["best_miou"] >= 0:
        metrics = {"dataset": loaded.config.data.dataset, "split": loaded.config.data.val_split,
                   "mIoU": round(100 * state["best_miou"], 2)}  # fmt: skip
    source = f"segmnv3 checkpoint {Path(checkpoint).name}"
    weights, card = export_weights(loaded, out_dir, name=name, metrics=metrics, license=license,
                                   source=source)  # fmt: skip
    log(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) and its card {card}")
    log(f"share them: upload the .pth, put its URL in the card, and load the card with "
        f"segmnv3.hub.load_registry_file or ${hub.REGISTRY_ENV}")  # fmt: skip
    return {"weights": str(weights), "card": str(card)}
