"""Which device to run on: the default, and a user's choice checked against this machine."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


_threads_lock = threading.Lock()
_threads_state = {"inside": 0, "saved": 1}  # blocks open in all threads; the setting before
_threads_depth = threading.local()  # blocks open in this thread


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch's CPU ops on one thread inside the block, for work beside another runtime's
    threads (ONNX Runtime, OpenVINO, XNNPACK). A torch op on its OpenMP pool leaves the
    pool's workers spinning for milliseconds afterwards, on the cores the other runtime's
    threads then need: on 2 cores, the default path's network ran after the preprocessing
    ~3 ms slower than after a pause. Blocks nest and overlap across threads; the setting in
    force before the first comes back when each thread leaves its outermost block. A torch
    built without OpenMP (its own pool, whose size is fixed once it has run) is left as is."""
    if not torch._C.has_openmp:
        yield
        return
    with _threads_lock:
        if _threads_state["inside"] == 0:
            _threads_state["saved"] = torch.get_num_threads()
        _threads_state["inside"] += 1
        _threads_depth.n = getattr(_threads_depth, "n", 0) + 1
        torch.set_num_threads(1)  # this thread's OpenMP setting (and new threads' default)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_state["inside"] -= 1
            _threads_depth.n -= 1
            if _threads_depth.n == 0:
                torch.set_num_threads(_threads_state["saved"])


def resolve_device(name: str | torch.device) -> torch.device:
    """``name`` as a device this machine has, or a ValueError that says what is wrong."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {str(name)!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(name)!r}: no CUDA GPU is visible here; use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {str(name)!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {str(name)!r}: segmnv3 runs on cpu or cuda")
    return device


# What this CPU computes natively, decided here and nowhere else. Every decision takes a
# ``CpuFeatures`` argument (default: this machine's), so each branch is testable anywhere.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
AMX_FLAGS = frozenset({"amx_bf16", "amx_int8", "amx_tile"})
SHOWN_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class CpuFeatures:
    """The instruction-set flags of a CPU (as /proc/cpuinfo names them) and what follows:
    native bf16 (AVX512_BF16 or AMX; elsewhere bf16 is emulated, slower than fp32) and VNNI
    (uint8×int8 products summed in int32; without it x86 runs them as VPMADDUBSW, whose
    int16 pair sums saturate with 8-bit weights)."""

    flags: frozenset[str] = frozenset()

    @property
    def bf16(self) -> bool:
        return bool(self.flags & BF16_FLAGS)

    @property
    def vnni(self) -> bool:
        return bool(self.flags & VNNI_FLAGS)

    @property
    def amx(self) -> bool:
        return bool(self.flags & AMX_FLAGS)

    def describe(self) -> str:
        """The flags that change what segmnv3 runs, e.g. ``"avx2 avx512f avx512_vnni
        avx512_bf16"``, or ``"unknown CPU flags"``."""
        shown = [f for f in SHOWN_FLAGS if f in self.flags]
        return " ".join(shown) if shown else "unknown CPU flags"


def read_cpu_flags(path: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The flags line of ``path`` (Linux); empty where there is none."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def cpu_features() -> CpuFeatures:
    """This machine's :class:`CpuFeatures` (read once)."""
    return CpuFeatures(read_cpu_flags())


def native_bf16(device: torch.device, features: CpuFeatures | None = None) -> bool:
    """Whether ``device`` runs bf16 at full speed (a GPU with bf16 support, or a CPU whose
    ``features`` have it; default: this machine's)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return (features or cpu_features()).bf16


# int8 weights: 7 bits run right on every x86 CPU; 8 bits only where VNNI sums the products.
INT8_WEIGHT_BITS = (7, 8)


def int8_weight_bits(bits: int | str, features: CpuFeatures | None = None) -> int:
    """The weight width for an int8 export: 7 or 8 as asked, or ``"auto"`` → 8 where
    ``features`` (default: this machine's) have VNNI, else 7. A file is exported once and
    run on many CPUs, so the export tool's default is 7, which is right on all of them."""
    if str(bits) == "auto":
        return 8 if (features or cpu_features()).vnni else 7
    if str(bits) not in {str(b) for b in INT8_WEIGHT_BITS}:
        raise ValueError(f"int8 weight bits {bits!r}; choose 7, 8 or auto")
    return int(bits)


def int8_saturates(weight_bits: int, features: CpuFeatures | None = None) -> bool:
    """Whether an int8 model with ``weight_bits`` loses accuracy on a CPU with ``features``
    (default: this machine's): 8-bit weights without VNNI."""
    return weight_bits == 8 and not (features or cpu_features()).vnni


def openvino_precision(compiled_hint) -> str:
    """What OpenVINO says a compiled model runs in: its ``INFERENCE_PRECISION_HINT``, an
    ``openvino.Type``, compared as a type (its printed text changed between releases:
    ``bf16`` before, ``<Type: 'bfloat16'>`` in 2026.4)."""
    import openvino as ov

    kinds = {ov.Type.bf16: "bf16", ov.Type.f32: "fp32", ov.Type.f16: "fp16"}
    for kind, name in kinds.items():
        if compiled_hint == kind:
            return name
    raise ValueError(f"OpenVINO reports an unknown inference precision {compiled_hint!r}")
