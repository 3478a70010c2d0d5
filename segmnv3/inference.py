"""Segmenter: masks from images with one call, on PyTorch or ONNX Runtime."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .data.io import read_image
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .models.segmentation import SegmentationModel
from .postprocess import upsample_argmax
from .viz import colorize, overlay

ImageLike = Any  # str | Path | np.ndarray | PIL.Image.Image


def to_rgb(image: ImageLike, name: str = "image") -> np.ndarray:
    """A path, RGB/RGBA/grey uint8 array or PIL image → contiguous RGB uint8 H×W×3."""
    if isinstance(image, str | Path):
        return read_image(image)
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image, without importing PIL
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a path, a numpy array or a PIL image, got {type(image)}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name}: expected uint8 pixels, got dtype {image.dtype}")
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2))
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    raise ValueError(f"{name}: expected H×W, H×W×3 or H×W×4 pixels, got shape {image.shape}")


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm that follows a conv in a Sequential into that conv
    (same outputs, two fewer passes over memory per layer). Returns a fused copy."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:], strict=False):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                setattr(module, name_a, fuse_conv_bn_eval(a, b))
                setattr(module, name_b, nn.Identity())
    return model


class TorchBackend:
    """Eager PyTorch with BN folded into convs, channels-last memory and inference mode."""

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = fuse_batchnorm(model).to(self.device)
        if getattr(self.model, "aux_classifier", None) is not None:
            self.model.aux_classifier = None  # the auxiliary head only serves training
        self.model = self.model.to(memory_format=torch.channels_last)

    def _input(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(batch).to(self.device)
        return x.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def logits(self, batch: np.ndarray) -> torch.Tensor:
        return self.model(self._input(batch))["out"].float()

    @torch.inference_mode()
    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor | None:
        """The logits before the final upsampling (None for a model that cannot give them)."""
        if not isinstance(self.model, SegmentationModel):
            return None
        return self.model(self._input(batch), upsample=False)["out"].float()


class OrtBackend:
    """ONNX Runtime session of an exported model (fp32 or int8).

    Build it with :meth:`load`, which runs the model without its full-resolution tail (see
    :func:`segmnv3.export.lowres_graph`); ``OrtBackend(session)`` also takes a session of the
    whole exported graph, whose ``labels`` output it then uses.
    """

    def __init__(self, session) -> None:
        self.session = session
        self.outputs = {o.name for o in session.get_outputs()}
        self.uint8 = any(
            o.name == "logits_lowres" and o.type == "tensor(uint8)" for o in session.get_outputs()
        )

    @classmethod
    def load(
        cls, model: str | Path | bytes, device: str = "cpu", num_threads: int | None = None
    ) -> OrtBackend:
        """A session of ``model`` (an exported file or its bytes) that outputs the logits
        before the final upsampling."""
        from .export import lowres_graph, ort_session

        return cls(ort_session(lowres_graph(model), device=device, num_threads=num_threads))

    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor | None:
        if "logits_lowres" not in self.outputs:
            return None
        (out,) = self.session.run(["logits_lowres"], {"input": batch})
        return torch.from_numpy(out)

    def logits(self, batch: np.ndarray) -> torch.Tensor:
        if self.uint8 or ("logits" not in self.outputs and "logits_lowres" not in self.outputs):
            raise ValueError(
                "this ONNX model (int8) outputs labels only; predict_proba needs the fp32 model"
            )
        if "logits" not in self.outputs:
            low = self.lowres_logits(batch)
            return F.interpolate(low, size=batch.shape[-2:], mode="bilinear", align_corners=False)
        (out,) = self.session.run(["logits"], {"input": batch})
        return torch.from_numpy(out)

    def labels(self, batch: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(["labels"], {"input": batch})
        return out


class Segmenter:
    """Turns images into masks. Build it with :meth:`from_checkpoint`.

    ``predict(x)`` takes a path, an RGB / RGBA / grey uint8 array, a PIL image or a list of
    these, and returns an (H, W) uint8 array of class ids per image at that image's own size
    (int32 with more than 255 classes). Preprocessing is evaluation's: the shorter side is
    resized when the model's config says so, then ImageNet normalisation.
    """

    def __init__(
        self,
        backend: TorchBackend | OrtBackend,
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
        self.resize, self.batch_size = resize, batch_size
        # Normalisation as one multiply-add on the uint8 values: x * scale + shift.
        std64, mean64 = np.asarray(std, np.float64), np.asarray(mean, np.float64)
        self._scale = torch.tensor(1.0 / (255.0 * std64), dtype=torch.float32).view(3, 1, 1)
        self._shift = torch.tensor(-mean64 / std64, dtype=torch.float32).view(3, 1, 1)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str = "cpu",
        backend: str = "torch",
        *,
        batch_size: int = 4,
        num_threads: int | None = None,
    ) -> Segmenter:
        """From a segmnv3 checkpoint, a torchvision segmentation state dict, or (for
        ``backend="onnxruntime"``) an ``.onnx`` file written by ``tools/export_seg.py``.
        With ``backend="onnxruntime"`` and a ``.pt`` file, the model is exported in memory."""
        if backend not in ("torch", "onnxruntime"):
            raise ValueError(f"backend {backend!r}; choose 'torch' or 'onnxruntime'")
        path = Path(path)
        if path.suffix == ".onnx":
            if backend != "onnxruntime":
                raise ValueError(f"{path} is an ONNX model: use backend='onnxruntime'")
            from .export import load_onnx_metadata

            meta = load_onnx_metadata(path)
            backend_ = OrtBackend.load(path, device=device, num_threads=num_threads)
            return cls(backend_, meta["classes"], meta["palette"],
                       resize=meta["resize"], mean=meta["mean"], std=meta["std"],
                       batch_size=batch_size)  # fmt: skip
        from .engine.checkpoint import load_model

        loaded = load_model(path, "cpu")
        resize = loaded.config.data.eval_resize
        if backend == "onnxruntime":
            from .export import export_onnx

            data = export_onnx(loaded.model, None, classes=loaded.classes,
                               palette=loaded.palette, resize=resize)  # fmt: skip
            runner: TorchBackend | OrtBackend = OrtBackend.load(data, device, num_threads)
        else:
            runner = TorchBackend(loaded.model, device)
        return cls(runner, loaded.classes, loaded.palette, resize=resize, batch_size=batch_size)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 H×W×3 → the model input, 3×H×W float32 (resized, normalised)."""
        if self.resize:
            h, w = rgb.shape[:2]
            s = self.resize / min(h, w)
            size = (max(1, round(w * s)), max(1, round(h * s)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        # One fused multiply-add from HWC uint8 into a CHW float32 buffer (PyTorch's threads;
        # a tenth of the time of the same arithmetic in NumPy at 1024×512).
        if not rgb.flags.writeable:  # e.g. np.asarray of a PIL image; torch wants writable
            rgb = rgb.copy()
        out = torch.empty((3, *rgb.shape[:2]), dtype=torch.float32)
        torch.addcmul(self._shift, torch.from_numpy(rgb).permute(2, 0, 1), self._scale, out=out)
        return out.numpy()

    def _batches(self, images: list[np.ndarray]):
        """Groups of indices whose prepared sizes match, at most ``batch_size`` each."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(img.shape[:2], []).append(i)
        for idx in groups.values():
            for k in range(0, len(idx), self.batch_size):
                yield idx[k : k + self.batch_size]

    def _run(self, x: ImageLike | list, want: str):
        single = not isinstance(x, list | tuple)
        items = [x] if single else list(x)
        rgbs = [to_rgb(item, f"image {i}") for i, item in enumerate(items)]
        results: list[Any] = [None] * len(rgbs)
        for idx in self._batches(rgbs):
            if len(idx) == 1:
                batch = self.prepare(rgbs[idx[0]])[None]
            else:
                batch = np.stack([self.prepare(rgbs[i]) for i in idx])
            low = self.backend.lowres_logits(batch) if want == "labels" else None
            if low is not None:
                ids_batch = upsample_argmax(low, batch.shape[-2:]).cpu().numpy()
            elif want == "labels" and isinstance(self.backend, OrtBackend):
                ids_batch = self.backend.labels(batch)  # argmax inside the graph
            else:
                logits = self.backend.logits(batch)
                ids_batch = logits.numpy().argmax(1) if want == "labels" else None
            for k, i in enumerate(idx):
                h, w = rgbs[i].shape[:2]
                if want == "proba":
                    out = logits[k : k + 1]
                    if out.shape[-2:] != (h, w):
                        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
                    results[i] = out[0].softmax(0).numpy()
                    continue
                ids = ids_batch[k]
                if ids.shape != (h, w):
                    ids = cv2.resize(ids.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
                results[i] = self._as_ids(ids)
        return results[0] if single else results

    def _as_ids(self, ids: np.ndarray) -> np.ndarray:
        return ids.astype(np.uint8 if self.num_classes <= 255 else np.int32, copy=False)

    def predict(self, x: ImageLike | list) -> np.ndarray | list[np.ndarray]:
        """Class-id masks at each input's resolution (a list in, a list out)."""
        return self._run(x, "labels")

    def predict_proba(self, x: ImageLike | list) -> np.ndarray | list[np.ndarray]:
        """Class probabilities, K×H×W float32, at each input's resolution."""
        return self._run(x, "proba")

    def colorize(self, mask: np.ndarray) -> np.ndarray:
        """RGB uint8 picture of a mask in the class palette."""
        return colorize(mask, self.palette)

    def overlay(self, image: ImageLike, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        """The mask's colours blended over the image (RGB uint8)."""
        return overlay(to_rgb(image), mask, self.palette, alpha)
