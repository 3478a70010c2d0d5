"""Reading and writing images and masks, and atomic writes: the leaf every layer shares.

Images are decoded with OpenCV, with errors that name the file and the problem; files are
written through a temp file and ``os.replace``, so an interruption never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".tif", ".tiff", ".webp")
PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Files are written through a temp file, which mkstemp creates 0600; they get the mode a
# plain open() would give them instead.
FILE_MODE = 0o666 & ~_current_umask()


def _png_complete(data: bytes) -> bool:
    """Walk the PNG's chunks up to IEND (bytes after it, as some tools append, are fine)."""
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"IEND":
            return True
        pos += 12 + length  # length, type, data, CRC
    return False


def _jpeg_complete(data: bytes) -> bool:
    """An end-of-image marker after the first scan. Data after it (a phone's motion-photo
    video, say) is fine; thumbnails sit before the scan, so their markers don't count."""
    scan = data.find(b"\xff\xda")
    return scan >= 0 and data.find(b"\xff\xd9", scan) >= 0


def _read_bytes(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    return check_complete(np.fromfile(path, dtype=np.uint8), path)


def check_complete(data: np.ndarray, name) -> np.ndarray:
    """``data`` (an encoded image's bytes), or a ValueError naming ``name`` when it is
    empty or cut off. OpenCV decodes a truncated PNG or JPEG into a partly grey picture with
    only a warning: the structure is checked so that a cut-off download is an error, not a
    wrong label."""
    if data.size == 0:
        raise ValueError(f"{name}: file is empty")
    raw = data.tobytes()
    if raw.startswith(PNG_MAGIC) and not _png_complete(raw):
        raise ValueError(f"{name}: truncated PNG (its chunks end before IEND)")
    if raw.startswith(JPEG_MAGIC) and not _jpeg_complete(raw):
        raise ValueError(f"{name}: truncated JPEG (no end-of-image marker after the scan)")
    return data


def read_image(path: str | Path, exif: bool = True) -> np.ndarray:
    """Read an image as RGB uint8 H×W×3 (grey is expanded, alpha dropped, 16-bit scaled).

    ``exif=True`` turns the picture upright as its EXIF orientation says (as viewers show
    it); datasets read with ``exif=False``, the pixels as stored, like their masks."""
    path = Path(path)
    return decode_image(_read_bytes(path), path, exif)


def decode_image(data: np.ndarray, name, exif: bool = True) -> np.ndarray:
    """Encoded image bytes (checked with :func:`check_complete`) → RGB uint8 H×W×3."""
    flags = cv2.IMREAD_COLOR if exif else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(data, flags)
    if image is None:
        raise ValueError(f"{name}: cannot decode image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _png_color_type(raw: bytes) -> int | None:
    return raw[25] if raw.startswith(PNG_MAGIC) and len(raw) > 25 else None


def read_mask(path: str | Path) -> np.ndarray:
    """Read a label PNG: H×W ids for single-channel and palette ('P' mode, VOC-style) files,
    whose palette indices are the ids; H×W×3 (RGB) for colour ones. JPEG masks are refused
    (lossy compression changes the ids along every edge)."""
    path = Path(path)
    data = _read_bytes(path)
    raw = data.tobytes()
    if raw.startswith(JPEG_MAGIC):
        raise ValueError(f"{path}: a JPEG mask; masks must be lossless (save them as PNG)")
    if _png_color_type(raw) == 3:  # palette: the indices are the ids (OpenCV would expand them)
        with Image.open(path) as pil:
            return np.array(pil)
    mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
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


def encode_png(array: np.ndarray, name="array") -> bytes:
    """PNG bytes of an H×W id mask (uint8 or uint16) or an H×W×3 RGB picture."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"cannot encode {name} as PNG (array {array.shape} {array.dtype})")
    return encoded.tobytes()


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a PNG atomically (temp file, then rename). RGB arrays are given as RGB."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, encode_png(array, path))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temp file beside it, fsync, ``os.replace``.
    An interruption leaves the old file (or none), never half a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # name the folder, not the temp file
        reason = exc.strerror or type(exc).__name__
        raise type(exc)(f"cannot write to folder {path.parent} ({reason.lower()})") from None
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_rgb(image, name: str = "image") -> np.ndarray:
    """A path, RGB/RGBA/grey uint8 array or PIL image → contiguous RGB uint8 H×W×3.

    One rule for orientation: paths and PIL images are turned upright as their EXIF
    orientation says (as a viewer shows them); arrays are taken as given."""
    if isinstance(image, str | Path):
        return read_image(image)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a path, a numpy array or a PIL image, got {type(image)}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name}: expected uint8 pixels, got dtype {image.dtype}")
    if image.size == 0:
        raise ValueError(f"{name}: an empty image (shape {image.shape})")
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2))
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    raise ValueError(f"{name}: expected H×W, H×W×3 or H×W×4 pixels, got shape {image.shape}")


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale, don't clip
        grey = np.asarray(image).astype(np.int64)
        top = 65535 if image.mode.startswith("I;16") or grey.max(initial=0) > 255 else 255
        grey = (grey.clip(0, top) * 255 + top // 2) // top
        return np.ascontiguousarray(np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2))
    return np.asarray(image.convert("RGB"))
