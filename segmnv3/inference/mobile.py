"""Files for phones: the graph an app runs (uint8 RGB in, logits or labels out, at a fixed
size), its JSON card, and what the phone runtimes' backends share. ExecuTorch's ``.pte`` is
:mod:`segmnv3.inference.pte`'s, LiteRT's ``.tflite`` :mod:`segmnv3.inference.tflite`'s.

The card beside ``model.pte`` is ``model.pte.json``: what the app feeds and gets back
(``input``: shape, dtype, layout, normalized; ``outputs``), classes, palette, mean, std,
the export's checks and the versions. :class:`Segmenter` reads it to run the file.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import __version__
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD
from .mobile_argmax import CellArgmax
from .mobile_rewrites import SignedBytes, mean_pools

LAYOUTS, OUTPUTS = ("nhwc", "nchw"), ("logits", "labels")
EXTRA = "segmnv3[mobile]"


@dataclass(frozen=True)
class MobileSpec:
    """What the app passes and gets back. ``normalized``: the app passes ImageNet-normalised
    float32 (True) or raw 0…255 uint8 values (False: normalisation is in the graph).
    ``int8_bytes``: the raw RGB bytes are passed typed int8, the same bytes (200 reads as
    −56; ExecuTorch files, see :class:`SignedBytes`)."""

    size: tuple[int, int]
    layout: str = "nhwc"
    normalized: bool = False
    output: str = "logits"
    int8_bytes: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"input layout {self.layout!r}; choose one of {', '.join(LAYOUTS)}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output {self.output!r}; choose one of {', '.join(OUTPUTS)}")
        if self.int8_bytes and self.normalized:
            raise ValueError("a normalised input is float32: it cannot also be int8 bytes")

    @classmethod
    def of_format(cls, fmt: str, size, layout="nhwc", normalized=False, output="logits"):
        """The spec a ``fmt`` file is exported with: ExecuTorch takes raw bytes as int8."""
        return cls(size, layout, normalized, output, fmt == "executorch" and not normalized)

    @property
    def input_shape(self) -> list[int]:
        h, w = self.size
        return [1, h, w, 3] if self.layout == "nhwc" else [1, 3, h, w]

    @property
    def input_dtype(self) -> torch.dtype:
        if self.normalized:
            return torch.float32
        return torch.int8 if self.int8_bytes else torch.uint8


def check_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """``size`` (H, W), or an error naming the rule: each side a multiple of ``stride``."""
    h, w = (int(v) for v in size)
    if h < stride or w < stride or h % stride or w % stride:
        up = [max(stride, -(-v // stride) * stride) for v in (h, w)]
        raise ValueError(f"--size {h}x{w}: each side must be a multiple of the model's stride "
                         f"{stride} (the nearest larger size is {up[0]}x{up[1]})")  # fmt: skip
    return h, w


class MobileGraph(nn.Module):
    """The model as the app runs it: the input in ``spec``'s layout and dtype, normalised in
    the graph for uint8, and either the head's logits (1×K×h×w, stride 8) or the labels at
    the input size (1×H×W, :class:`~.mobile_argmax.CellArgmax`: ``fmt`` "executorch" gives
    int8 ids, whose conversion its delegate runs, "tflite" uint8).

    For "tflite" the normalisation is a 1×1 convolution with a diagonal weight (the same
    values): LiteRT's XNNPACK runs a per-channel multiply-add over the 3-channel input
    slowly (the input stage alone at 512×1024, 2 threads: int8 9.0 → 4.0 ms, fp32 6.9 → 3.8)."""

    def __init__(self, model: nn.Module, spec: MobileSpec, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 fmt: str = "executorch"):  # fmt: skip
        super().__init__()
        if fmt == "executorch":
            model = mean_pools(model)
        self.model, self.spec = model.eval(), spec
        std_t, mean_t = torch.tensor(std).view(1, 3, 1, 1), torch.tensor(mean).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer("shift", -mean_t / std_t)
        self.conv_norm = fmt == "tflite"
        if self.conv_norm:
            self.register_buffer("norm_weight", torch.diag(self.scale.view(3)).view(3, 3, 1, 1))
            self.register_buffer("norm_bias", self.shift.view(3).clone())
        if spec.int8_bytes:
            self.bytes = SignedBytes()
        if spec.output == "labels":
            self.labels = _labels_module(self, fmt)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The head's low-resolution logits of an input in ``spec``'s form. Raw values become
        float before the layout changes: uint8's cast runs outside the XNNPACK delegate (on
        ExecuTorch's portable kernels), the permute inside it."""
        if self.spec.int8_bytes:
            x = self.bytes(x)
        elif not self.spec.normalized:
            x = x.to(torch.float32)
        if self.spec.layout == "nhwc":
            x = x.permute(0, 3, 1, 2)
        if not self.spec.normalized:
            x = self.normalize(x)
        return self.model(x, upsample=False)["out"]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """0…255 values (N×3×H×W float) as the model's input."""
        if self.conv_norm:
            return F.conv2d(x, self.norm_weight, self.norm_bias)
        return x * self.scale + self.shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.logits(x)
        return low if self.spec.output == "logits" else self.labels(low)

    def example(self) -> torch.Tensor:
        if self.spec.normalized:
            return torch.zeros(self.spec.input_shape)
        return torch.full(self.spec.input_shape, 100, dtype=self.spec.input_dtype)

    def feed(self, rgb: np.ndarray) -> torch.Tensor:
        """An RGB uint8 image as this graph's input, as the app makes it."""
        return as_input(rgb, self.spec, self.scale.view(3).tolist(), self.shift.view(3).tolist())


def _labels_module(graph: MobileGraph, fmt: str) -> CellArgmax:
    """The labels' upsampling-argmax for the logits' stride, measured on a dry run."""
    with torch.no_grad():
        low = graph.logits(graph.example())
    (h, w), k = graph.spec.size, low.shape[1]
    factor = h // low.shape[2]
    if (low.shape[2] * factor, low.shape[3] * factor) != (h, w) or factor % 2:
        raise ValueError(f"labels out: logits of {low.shape[2]}x{low.shape[3]} do not tile "
                         f"--size {h}x{w} by an even factor")  # fmt: skip
    dtype = torch.int8 if fmt == "executorch" and k <= 127 else torch.uint8
    return CellArgmax(k, factor, dtype, "executorch" if fmt == "executorch" else "litert")


def as_input(rgb: np.ndarray, spec: MobileSpec, scale=None, shift=None) -> torch.Tensor:
    """An RGB uint8 H×W×3 image as ``spec``'s input tensor (what the app does)."""
    h, w = spec.size
    if rgb.shape[:2] != (h, w):
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    x = torch.from_numpy(np.ascontiguousarray(rgb))[None]  # 1×H×W×3 uint8
    if spec.int8_bytes:
        x = x.view(torch.int8)  # the same bytes
    if spec.normalized:
        x = x.float() * torch.tensor(scale) + torch.tensor(shift)
    if spec.layout == "nchw":
        x = x.permute(0, 3, 1, 2)
    return x.contiguous()


def require(module: str, what: str, extra: str = EXTRA) -> None:
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{what} is not installed: pip install '{extra}'")


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def make_card(spec: MobileSpec, *, fmt: str, precision: str, classes, palette, mean, std,
              checks: dict, quantization: dict | None = None) -> dict:  # fmt: skip
    """The JSON card of an exported file."""
    h, w = spec.size
    inp = {"shape": spec.input_shape, "dtype": str(spec.input_dtype).removeprefix("torch."),
           "layout": spec.layout.upper(), "normalized": spec.normalized}  # fmt: skip
    if spec.int8_bytes:
        inp["values"] = "the RGB bytes 0…255 as they are, typed int8 (200 reads as -56)"
    if quantization:
        inp["quantization"] = quantization
    if spec.output == "labels":
        out = {
            "name": "labels",
            "shape": [1, h, w],
            "dtype": "uint8",
            "layout": "NHW",
            "values": f"class ids 0…{len(classes) - 1}, indices into classes",
        }
    else:
        shape = [1, len(classes), -(-h // 8), -(-w // 8)]  # stride 8 (the exporter measures it)
        out = {"name": "logits", "shape": shape, "dtype": "float32", "layout": "NCHW"}
    return {"format": fmt, "precision": precision, "input": inp, "outputs": [out],
            "classes": list(classes), "palette": [list(map(int, c)) for c in palette],
            "mean": list(mean), "std": list(std), "spec": asdict(spec), "checks": checks,
            "versions": {"segmnv3": __version__, "torch": torch.__version__,
                         **RUNTIMES_OF[fmt]()}}  # fmt: skip


RUNTIMES_OF = {
    "executorch": lambda: {"executorch": version("executorch")},
    "tflite": lambda: {"litert-torch": version("litert-torch"),
                       "ai-edge-litert": version("ai-edge-litert"),
                       "ai-edge-quantizer": version("ai-edge-quantizer")},
}  # fmt: skip


def card_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_card(path: str | Path) -> dict:
    """The card beside an exported file, checked for the keys a runner needs."""
    card = card_path(path)
    if not card.is_file():
        raise FileNotFoundError(f"{path}: no card {card} beside it (export_seg.py writes one)")
    try:
        data = json.loads(card.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{card}: not valid JSON ({exc})") from None
    missing = [k for k in ("input", "outputs", "classes", "palette", "mean", "std", "spec")
               if k not in data]  # fmt: skip
    if missing:
        raise ValueError(f"{card}: not a segmnv3 mobile card (missing {', '.join(missing)})")
    return data


def spec_of(card: dict) -> MobileSpec:
    s = card["spec"]
    return MobileSpec(tuple(s["size"]), s["layout"], bool(s["normalized"]), s["output"],
                      bool(s.get("int8_bytes", False)))  # fmt: skip


def args_of(example) -> tuple:
    return example if isinstance(example, tuple) else (example,)


class PhoneBackend:
    """What the phone runtimes' backends share: the card's input preparation, one image at a
    time, and labels files turned into one-hot scores that Segmenter's upsampling keeps.
    Batches are taken as Segmenter prepares them for a phone file (raw 0…255 values, 3×H×W
    float32 at the image's size); each image is resized to the file's input. Subclasses set
    ``name`` and implement ``run(x)``."""

    name = "phone"
    device = torch.device("cpu")

    def __init__(self, card: dict) -> None:
        self.card, self.spec = card, spec_of(card)
        self.precision = card.get("precision", "fp32")
        std, mean = np.asarray(card["std"]), np.asarray(card["mean"])
        self.scale, self.shift = (1 / (255 * std)).tolist(), (-mean / std).tolist()
        self.classes = len(card["classes"])

    def run(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def lowres_logits(self, batch: np.ndarray) -> torch.Tensor:
        outs = []
        for chw in batch:  # raw values: integers, up to float rounding
            rgb = np.rint(chw.transpose(1, 2, 0)).clip(0, 255).astype(np.uint8)
            out = self.run(as_input(rgb, self.spec, self.scale, self.shift))
            if self.spec.output == "labels":  # one-hot: Segmenter's upsampling keeps the ids
                out = F.one_hot(out.long(), self.classes).permute(0, 3, 1, 2).to(torch.uint8)
            outs.append(out)
        return torch.cat(outs)
