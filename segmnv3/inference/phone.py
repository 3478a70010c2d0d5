"""Opening a phone file (ExecuTorch's ``.pte``, LiteRT's ``.tflite``) with its card, on its
own runtime: what :meth:`Segmenter.from_mobile` runs."""

from __future__ import annotations

from pathlib import Path

from ..preprocess import Preprocessing
from .mobile import PhoneBackend, read_card
from .pte import ExecutorchBackend
from .tflite import LiteRTBackend

PHONE_SUFFIXES = {".pte": ("executorch", ExecutorchBackend), ".tflite": ("litert", LiteRTBackend)}
# A phone backend takes raw 0…255 values and does the file's own input preparation.
RAW_VALUES = Preprocessing(None, (0.0, 0.0, 0.0), (1 / 255,) * 3)


def open_phone_file(path: str | Path, backend: str = "auto",
                    num_threads: int | None = None) -> tuple[PhoneBackend, dict]:  # fmt: skip
    """The backend running ``path`` and the file's card."""
    path = Path(path)
    kind, runtime = PHONE_SUFFIXES[path.suffix.lower()]
    if backend not in ("auto", kind):
        raise ValueError(f"{path} is a phone file: it runs on backend {kind!r}")
    card = read_card(path)
    return runtime(path, card, num_threads), card
