"""Which device to run on: the default, and a user's choice checked against this machine."""

from __future__ import annotations

import torch


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512_BF16 or AMX); elsewhere bf16 is
    emulated, slower than fp32. Read from /proc/cpuinfo (Linux); False where unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 at full speed (a GPU with bf16 support, or such a CPU)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()
