"""``tools/predict_seg.py`` as a library function: masks for files, folders and globs."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from .data.io import IMAGE_EXTENSIONS, write_png
from .inference import Segmenter


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns → image paths."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"no images in folder {p}")
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item) if Path(m).is_file())
            if not matches:
                raise FileNotFoundError(f"no such file, folder or glob match: {item}")
            paths += matches
    return paths


def predict_files(
    segmenter: Segmenter,
    inputs: Iterable[str],
    out_dir: str | Path,
    *,
    color: bool = False,
    overlay: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Write ``<out>/<stem>.png`` (class ids) per image, plus ``<stem>_color.png`` and
    ``<stem>_overlay.png`` on request. Returns the mask paths."""
    out_dir = Path(out_dir)
    written = []
    for path in tqdm(expand_inputs(inputs), desc="predict", disable=not progress):
        mask = segmenter.predict(path)
        target = out_dir / f"{path.stem}.png"
        write_png(target, mask)
        if color:
            write_png(out_dir / f"{path.stem}_color.png", segmenter.colorize(mask))
        if overlay:
            write_png(out_dir / f"{path.stem}_overlay.png", segmenter.overlay(path, mask))
        written.append(target)
    return written
