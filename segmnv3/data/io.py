"""Decoding images and masks with OpenCV, with errors that name the file and the problem."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _read_bytes(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ValueError(f"{path}: file is empty")
    # OpenCV decodes a truncated PNG or JPEG into a partly grey picture with only a warning:
    # check for the end marker so that a cut-off download is an error, not a wrong label.
    head = data[:8].tobytes()
    if head.startswith(b"\x89PNG") and b"IEND" not in data[-16:].tobytes():
        raise ValueError(f"{path}: truncated PNG (no IEND chunk at the end)")
    if head.startswith(b"\xff\xd8") and b"\xff\xd9" not in data[-64:].tobytes():
        raise ValueError(f"{path}: truncated JPEG (no end-of-image marker)")
    return data


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as RGB uint8 H×W×3 (grey is expanded, alpha dropped)."""
    path = Path(path)
    image = cv2.imdecode(_read_bytes(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot decode image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a label PNG unchanged: H×W for single-channel files, H×W×3 (RGB) for colour ones."""
    path = Path(path)
    mask = cv2.imdecode(_read_bytes(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError(f"{path}: cannot decode mask (corrupt or not an image)")
    if mask.dtype != np.uint8 and mask.dtype != np.uint16:
        raise ValueError(f"{path}: mask has dtype {mask.dtype}; expected 8- or 16-bit ids")
    if mask.ndim == 3:
        if mask.shape[2] == 4:
            raise ValueError(f"{path}: mask has an alpha channel; save it as ids or RGB")
        mask = cv2.cvtColor(mask, cv2.COLOR_BGR2RGB)
    return mask


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path, mask_path) -> None:
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(
            f"{mask_path}: mask size {mask.shape[1]}×{mask.shape[0]} differs from image "
            f"{image_path} ({image.shape[1]}×{image.shape[0]})"
        )


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a PNG atomically (temp file, then rename). RGB arrays are given as RGB."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"cannot encode {path} as PNG (array {array.shape} {array.dtype})")
    write_bytes_atomic(path, encoded.tobytes())


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
