"""Segmenter: masks from images with one call, on any backend."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..checkpoint import load_model, load_pretrained
from ..device import int8_saturates, one_torch_thread, resolve_device
from ..io import to_rgb
from ..postprocess import upsample_argmax
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from ..viz import colorize, draw_legend, overlay
from .backends import BACKENDS, Backend, TorchBackend, choose_backend
from .onnx import export_onnx, load_onnx_metadata
from .phone import PHONE_SUFFIXES, RAW_VALUES, open_phone_file
from .stream import stream_masks

log = logging.getLogger(__name__)

ImageLike = Any  # str | Path | np.ndarray | PIL.Image.Image


class Segmenter:
    """Turns images into masks. Build it with :meth:`from_checkpoint`.

    ``predict(x)`` takes a path, an RGB / RGBA / grey uint8 array, a PIL image or a list of
    these, and returns an (H, W) uint8 array of class ids per image at that image's own size
    (int32 with more than 255 classes). Preprocessing is evaluation's: the shorter side is
    resized when the model's config says so, then ImageNet normalisation.
    """

    def __init__(
        self,
        backend: Backend,
        classes: Sequence[str],
        palette: Sequence[Sequence[int]],
        *,
        resize: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        batch_size: int = 4,
    ) -> None:
        self.backend, self.classes = backend, list(classes)
        self.palette = [tuple(int(v) for v in c) for c in palette]
        self.batch_size = batch_size
        self.preprocessing = Preprocessing(resize, tuple(mean), tuple(std))

    @property
    def resize(self) -> int | None:
        return self.preprocessing.resize

    @property
    def mean(self) -> list[float]:  # a phone file's from its card (its graph normalises)
        return list(getattr(self.backend, "card", {}).get("mean", self.preprocessing.mean))

    @property
    def std(self) -> list[float]:
        return list(getattr(self.backend, "card", {}).get("std", self.preprocessing.std))

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", backend: str = "auto",
                    precision: str = "auto", *, batch_size: int = 4,
                    num_threads: int | None = None) -> Segmenter:  # fmt: skip
        """From a segmnv3 checkpoint, a torchvision segmentation state dict, or an ``.onnx``
        or ExecuTorch ``.pte`` file written by ``tools/export_seg.py`` (fp32 or int8; a
        ``.pte`` runs in ExecuTorch, see :meth:`from_mobile`).

        ``backend``: ``"auto"`` (torch on CUDA; on the CPU the fastest installed runtime:
        openvino, then onnxruntime, then torch), or one of them by name; a ``.pt`` file is
        exported to ONNX in memory for the ONNX runtimes. ``precision``: ``"auto"`` (bf16
        where the device computes it natively, else fp32), ``"fp32"`` or ``"bf16"``."""
        path = Path(path)
        if path.suffix.lower() in PHONE_SUFFIXES:
            return cls.from_mobile(path, backend, batch_size=batch_size, num_threads=num_threads)
        dev = resolve_device(device)
        kind = choose_backend(backend, dev)
        if path.suffix.lower() != ".onnx":
            return cls._from_loaded(load_model(path, "cpu"), dev, kind, precision, batch_size,
                                    num_threads)  # fmt: skip
        if kind == "torch":
            raise ValueError(f"{path} is an ONNX model: use backend 'openvino' or 'onnxruntime'")
        meta = load_onnx_metadata(path)
        if int8_saturates(int(meta.get("int8_weight_bits", 7))):
            log.warning(
                "%s has 8-bit int8 weights and this CPU has no VNNI: its sums saturate "
                "(less accurate); export with --int8-weight-bits 7 for it",
                path,
            )
        preprocessing = Preprocessing(meta["resize"], tuple(meta["mean"]), tuple(meta["std"]))
        return cls.on_runtime(path, meta["classes"], meta["palette"], preprocessing, device=dev,
                              backend=kind, precision=precision, batch_size=batch_size,
                              num_threads=num_threads)  # fmt: skip

    @classmethod
    def from_mobile(cls, path: str | Path, backend: str = "auto", *, batch_size: int = 4,
                    num_threads: int | None = None):  # fmt: skip
        """A phone's file (``.pte`` or ``.tflite``) run by its own runtime (ExecuTorch or
        LiteRT), as its card (``<file>.json``) describes it: each image is resized to the
        file's fixed input, and the labels come back at the image's own size."""
        runner, card = open_phone_file(path, backend, num_threads)
        raw = RAW_VALUES
        return cls(runner, card["classes"], card["palette"], resize=raw.resize, mean=raw.mean,
                   std=raw.std, batch_size=batch_size)  # fmt: skip

    @classmethod
    def from_pretrained(cls, name: str, device: str = "cpu", backend: str = "auto",
                    precision: str = "auto", *, batch_size: int = 4,
                    num_threads: int | None = None) -> Segmenter:  # fmt: skip
        """From known weights by name (``segmnv3.list_weights()``): cached in torch.hub's
        folder, verified, downloaded only when missing (never with ``SEGMNV3_OFFLINE=1``).
        Preprocessing is the entry's (e.g. shorter side 520). Other arguments as in
        :meth:`from_checkpoint`."""
        return cls._from_loaded(load_pretrained(name), device, backend, precision, batch_size,
                                num_threads)  # fmt: skip

    @classmethod
    def _from_loaded(cls, loaded, device, backend, precision, batch_size, num_threads):
        """A LoadedModel (checkpoint or registry entry) with its preprocessing."""
        return cls.on_runtime(loaded.model, loaded.classes, loaded.palette, loaded.preprocessing,
                              device=device, backend=backend, precision=precision,
                              batch_size=batch_size, num_threads=num_threads)  # fmt: skip

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        classes: Sequence[str],
        palette: Sequence[Sequence[int]],
        *,
        resize: int | None = None,
        device: str | torch.device = "cpu",
        backend: str = "auto",
        precision: str = "auto",
        batch_size: int = 4,
        num_threads: int | None = None,
    ) -> Segmenter:
        """A Segmenter of a segmnv3 model in memory, on any backend (the ONNX runtimes get
        it exported in memory). Arguments as in :meth:`from_checkpoint`."""
        return cls.on_runtime(model, classes, palette, Preprocessing(resize), device=device,
                              backend=backend, precision=precision, batch_size=batch_size,
                              num_threads=num_threads)  # fmt: skip

    @classmethod
    def on_runtime(
        cls,
        model: nn.Module | str | Path | bytes,
        classes: Sequence[str],
        palette: Sequence[Sequence[int]],
        preprocessing: Preprocessing | None = None,
        *,
        device: str | torch.device = "cpu",
        backend: str = "auto",
        precision: str = "auto",
        batch_size: int = 4,
        num_threads: int | None = None,
    ) -> Segmenter:
        """The one constructor of "a Segmenter on runtime X from a model": ``model`` is a
        segmnv3 model in memory (exported to ONNX in memory for the ONNX runtimes) or an
        exported ONNX file or its bytes. The other constructors, the bench and the export's
        int8 comparison all come through here."""
        dev = resolve_device(device)
        kind = choose_backend(backend, dev)
        preprocessing = preprocessing or Preprocessing()
        if kind == "torch":
            if not isinstance(model, nn.Module):
                raise ValueError(f"{model} is an ONNX model: use backend 'openvino' or "
                                 "'onnxruntime'")  # fmt: skip
            runner: Backend = TorchBackend(model, dev, precision, num_threads)
        else:
            if isinstance(model, nn.Module):
                p = preprocessing
                model = export_onnx(model, None, classes=classes, palette=palette, lowres=True,
                                    resize=p.resize, mean=p.mean, std=p.std)  # fmt: skip
            runner = BACKENDS[kind].load(model, str(dev), num_threads, precision)
        p = preprocessing
        return cls(runner, classes, palette, resize=p.resize, mean=p.mean, std=p.std,
                   batch_size=batch_size)  # fmt: skip

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def precision(self) -> str:
        """What really runs: ``fp32``, ``bf16`` or ``int8``."""
        return self.backend.precision

    def describe(self) -> str:
        """One line for logs: backend, precision, device, classes."""
        return (f"{self.backend_name} {self.precision} on {self.backend.device}, "
                f"{self.num_classes} classes")  # fmt: skip

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 H×W×3 → the model input, 3×H×W float32 (resized, normalised), by the
        model's :class:`~segmnv3.preprocess.Preprocessing`."""
        return self.preprocessing(rgb)

    def _batches(self, images: list[np.ndarray]):
        """Groups of indices whose prepared sizes match, at most ``batch_size`` each."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(img.shape[:2], []).append(i)
        for idx in groups.values():
            for k in range(0, len(idx), self.batch_size):
                yield idx[k : k + self.batch_size]

    def _map(self, x: ImageLike | list, per_image: Callable[[Tensor, tuple[int, int]], Any]):
        """Prepare the images, run them in batches of one size, and turn each image's
        low-resolution logits (1×K×h×w) into a result at its own size."""
        single = not isinstance(x, list | tuple)
        items = [x] if single else list(x)
        rgbs = [to_rgb(item, f"image {i}") for i, item in enumerate(items)]
        results: list[Any] = [None] * len(rgbs)
        with self._torch_beside():
            for idx in self._batches(rgbs):
                prepared = [self.prepare(rgbs[i]) for i in idx]
                batch = prepared[0][None] if len(idx) == 1 else np.stack(prepared)
                low = self.backend.lowres_logits(batch)
                for k, i in enumerate(idx):
                    results[i] = per_image(low[k : k + 1], rgbs[i].shape[:2])
        return results[0] if single else results

    def _torch_beside(self):
        """torch's work on one thread while another runtime runs the network (see
        :func:`~segmnv3.device.one_torch_thread`); the torch backend keeps its threads."""
        return nullcontext() if isinstance(self.backend, TorchBackend) else one_torch_thread()

    def logits(self, rgb: np.ndarray) -> Tensor:
        """One RGB uint8 frame → its low-resolution logits (1×K×h×w); :meth:`labels` turns
        them into the mask. ``predict`` is the two in one; a video pipeline runs them in
        different threads so that the labels of one frame overlap the next frame's network."""
        with self._torch_beside():
            return self.backend.lowres_logits(self.prepare(rgb)[None])

    def labels(self, low: Tensor, size: tuple[int, int]) -> np.ndarray:
        """The (H, W) mask of one image's low-resolution logits at ``size``."""
        with self._torch_beside():
            return upsample_argmax(low, size)[0].cpu().numpy()

    @staticmethod
    def _proba(low: Tensor, size: tuple[int, int]) -> np.ndarray:
        if not low.is_floating_point():
            raise ValueError(
                "this model (int8) gives quantized logits, not probabilities; "
                "predict_proba needs the fp32 model"
            )
        up = F.interpolate(low.float(), size=size, mode="bilinear", align_corners=False)
        return up[0].softmax(0).cpu().numpy()

    def predict(self, x: ImageLike | list) -> np.ndarray | list[np.ndarray]:
        """Class-id masks at each input's resolution (a list in, a list out): uint8, or
        int32 past 255 classes."""
        return self._map(x, self.labels)

    def predict_proba(self, x: ImageLike | list) -> np.ndarray | list[np.ndarray]:
        """Class probabilities, K×H×W float32, at each input's resolution."""
        return self._map(x, self._proba)

    def stream(
        self, source: str | Path | int | Iterable[np.ndarray], depth: int = 4
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(frame, mask)`` for each frame of a video file, a camera index or an iterable of
        RGB uint8 frames, in order. Frames are decoded ahead in a thread (at most ``depth``),
        so decoding overlaps the network; a truncated file raises a
        :class:`~segmnv3.inference.stream.VideoError` naming it and the frame, after the
        frames before it."""
        return stream_masks(self.predict, source, depth)

    def colorize(self, mask: np.ndarray) -> np.ndarray:
        """RGB uint8 picture of a mask in the class palette."""
        return colorize(mask, self.palette)

    def overlay(
        self, image: ImageLike, mask: np.ndarray, alpha: float = 0.5, legend: bool = True
    ) -> np.ndarray:
        """The mask's colours blended over the image (RGB uint8), with a key of the classes
        present (``legend=False``: without)."""
        picture = overlay(to_rgb(image), mask, self.palette, alpha)
        return draw_legend(picture, mask, self.classes, self.palette) if legend else picture
