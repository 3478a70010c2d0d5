"""Pictures: palettes, colour masks, overlays and the confusion-matrix image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct colours, black first (for background), the same every call."""
    rng = np.random.default_rng(12345)
    return [(0, 0, 0)] + [tuple(int(c) for c in rng.integers(40, 256, 3)) for _ in range(n - 1)]


def colorize(mask: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """Class-id mask (H×W) → RGB uint8 picture; 255 (ignore) and unknown ids are black."""
    lut = np.zeros((max(256, len(palette)), 3), np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)
    if len(palette) <= 255:
        lut[255] = 0
    mask = np.asarray(mask)
    if mask.dtype == np.uint8:  # OpenCV's table look-up: a fifth of NumPy's indexing time
        return cv2.LUT(cv2.merge([mask, mask, mask]), lut[None, :256])
    return lut[mask]


def overlay(
    image: np.ndarray, mask: np.ndarray, palette: Sequence[Sequence[int]], alpha: float = 0.5
) -> np.ndarray:
    """Blend the colour mask over an RGB uint8 image; ignored pixels keep the image."""
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape[:2]} sizes differ")
    colour = colorize(mask, palette)
    blended = cv2.addWeighted(image, 1 - alpha, colour, alpha, 0)
    if len(palette) <= 255:
        keep = np.asarray(mask) == 255
        if keep.any():
            np.copyto(blended, image, where=keep[..., None])
    return blended


def draw_legend(
    picture: np.ndarray,
    mask: np.ndarray,
    classes: Sequence[str],
    palette: Sequence[Sequence[int]],
    max_rows: int = 12,
) -> np.ndarray:
    """A copy of ``picture`` with a key in its top-left corner: a swatch and the name of
    each class present in ``mask`` (most pixels first, at most ``max_rows``), so an overlay
    reads at a glance. The key scales with the picture's height."""
    counts = np.bincount(np.asarray(mask).ravel(), minlength=len(classes))[: len(classes)]
    present = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0][:max_rows]
    out = np.ascontiguousarray(picture).copy()
    if not present:
        return out
    scale = max(0.45, min(1.0, out.shape[0] / 600))
    row = max(10, round(22 * scale))
    text_w = max(cv2.getTextSize(classes[i], cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)[0][0]
                 for i in present)  # fmt: skip
    width = min(out.shape[1], row + 8 + text_w + 6)
    height = min(out.shape[0], row * len(present) + 6)
    box = out[:height, :width]
    box[:] = (box.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken behind the key
    for k, i in enumerate(present):
        y = 3 + k * row
        colour = tuple(int(v) for v in palette[i])
        cv2.rectangle(out, (4, y + 2), (row, y + row - 3), colour, thickness=-1)
        cv2.rectangle(out, (4, y + 2), (row, y + row - 3), (255, 255, 255), thickness=1)
        cv2.putText(out, classes[i], (row + 6, y + row - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * scale, (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    return out


def confusion_image(
    matrix: np.ndarray, classes: Sequence[str], cell: int = 28, title: str = ""
) -> np.ndarray:
    """Row-normalised confusion matrix (rows: truth, columns: prediction) as an RGB picture
    with class names and the percentage in each cell."""
    matrix = np.asarray(matrix, np.float64)
    rows = matrix.sum(1, keepdims=True)
    norm = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    n = len(classes)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    label_w = 10 + max(cv2.getTextSize(c, font, scale, 1)[0][0] for c in classes)
    top = label_w + 30
    title = title or "truth (rows) vs prediction (columns), %"
    h = top + n * cell + 10
    w = max(label_w + n * cell + 10, cv2.getTextSize(title, font, 0.45, 1)[0][0] + 10)
    img = np.full((h, w, 3), 255, np.uint8)
    heat = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    heat = cv2.resize(heat, (n * cell, n * cell), interpolation=cv2.INTER_NEAREST)
    img[top : top + n * cell, label_w : label_w + n * cell] = heat[..., ::-1]
    for i, name in enumerate(classes):
        y = top + i * cell + cell // 2 + 4
        cv2.putText(img, name, (5, y), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        # Column names, written vertically above the grid.
        size = cv2.getTextSize(name, font, scale, 1)[0]
        txt = np.full((size[1] + 6, size[0] + 4, 3), 255, np.uint8)
        cv2.putText(txt, name, (2, size[1] + 2), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        txt = cv2.rotate(txt, cv2.ROTATE_90_COUNTERCLOCKWISE)
        x0 = label_w + i * cell + (cell - txt.shape[1]) // 2
        y0 = top - 4 - txt.shape[0]
        img[max(y0, 0) : y0 + txt.shape[0], x0 : x0 + txt.shape[1]] = txt[-min(y0, 0) :]
        for j in range(n):
            if norm[i, j] >= 0.005:
                colour = (0, 0, 0) if norm[i, j] > 0.6 else (255, 255, 255)
                cv2.putText(
                    img,
                    f"{100 * norm[i, j]:.0f}",
                    (label_w + j * cell + 3, top + i * cell + cell // 2 + 4),
                    font,
                    0.33,
                    colour,
                    1,
                    cv2.LINE_AA,
                )
    cv2.putText(img, title, (5, 15), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def bar_chart(
    labels: Sequence[str], values: Sequence[float], colours: Sequence[Sequence[int]], title: str
) -> np.ndarray:
    """Horizontal bars (RGB picture), one per label, in its colour, with the value as a
    percentage at the bar's end; ``values`` are shares (0…1)."""
    font, scale, row = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 24
    label_w = 12 + max(cv2.getTextSize(str(t), font, scale, 1)[0][0] for t in labels)
    bar_w, top = 420, 34
    img = np.full((top + row * len(labels) + 10, label_w + bar_w + 70, 3), 255, np.uint8)
    cv2.putText(img, title, (8, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    peak = max(max(values, default=0.0), 1e-12)
    for k, (label, value, colour) in enumerate(zip(labels, values, colours, strict=True)):
        y = top + k * row
        cv2.putText(img, str(label), (6, y + 16), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        end = label_w + max(1, round(bar_w * value / peak)) if value > 0 else label_w
        fill = tuple(int(c) for c in colour)
        cv2.rectangle(img, (label_w, y + 3), (end, y + row - 4), fill, thickness=-1)
        cv2.rectangle(img, (label_w, y + 3), (end, y + row - 4), (60, 60, 60), thickness=1)
        text = f"{100 * value:.2f}%" if value < 0.1 else f"{100 * value:.1f}%"
        cv2.putText(img, text, (end + 5, y + 16), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def sample_sheet(
    samples: Sequence[tuple[str, np.ndarray, np.ndarray]],
    classes: Sequence[str],
    palette: Sequence[Sequence[int]],
    height: int = 200,
) -> np.ndarray:
    """One row per ``(name, image, mask)``: the image, and its mask over it with a key,
    scaled to ``height`` and named above."""
    rows = []
    for name, image, mask in samples:
        shown = draw_legend(overlay(image, mask, palette), mask, classes, palette)
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        pair = [cv2.resize(p, (width, height), interpolation=cv2.INTER_NEAREST)
                for p in (image, shown)]  # fmt: skip
        strip = np.full((22, 2 * width + 6, 3), 255, np.uint8)
        cv2.putText(strip, name, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
        gap = np.full((height, 6, 3), 255, np.uint8)
        rows.append(np.vstack([strip, np.hstack([pair[0], gap, pair[1]])]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.vstack(rows)
