"""Exports of a loaded model, each checked before it is written: ONNX (fp32) against
PyTorch here; the mobile formats will join it. A file that fails its check is never left
behind, and no export replaces its own source or an earlier file unless asked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..checkpoint import LoadedModel
from ..io import write_bytes_atomic
from .onnx import check_onnx, export_onnx, ort_session


def check_targets(targets: Sequence[Path], source: str | Path | None, overwrite: bool) -> None:
    """Refuse an output that is the source file itself, or one that exists (unless
    ``overwrite``), before any work is done."""
    for target in targets:
        if source is not None and Path(target).resolve() == Path(source).resolve():
            raise ValueError(f"--output {target} is the checkpoint itself: choose another name")
        if Path(target).exists() and not overwrite:
            raise FileExistsError(f"{target} exists: choose another --output, or --overwrite")


def export_checked_onnx(
    loaded: LoadedModel,
    output: str | Path,
    *,
    check_sizes=((64, 64), (97, 131), (256, 512)),
    num_threads: int | None = None,
    log=print,
) -> list[dict]:
    """Write ``loaded`` as ONNX at ``output`` (with its classes, palette and preprocessing
    in the metadata) after checking it against PyTorch at ``check_sizes`` (raising when a
    bound fails). Returns the check's rows."""
    p = loaded.preprocessing
    data = export_onnx(loaded.model, None, classes=loaded.classes, palette=loaded.palette,
                       resize=p.resize, mean=p.mean, std=p.std)  # fmt: skip
    rows = check_onnx(loaded.model, ort_session(data, num_threads=num_threads), check_sizes)
    write_bytes_atomic(output, data)
    log(f"exported {output} ({len(data) / 1e6:.1f} MB)")
    for r in rows:
        log(f"  check {r['size'][0]}×{r['size'][1]}: max |logit diff| {r['max_abs_diff']:.2e} "
            f"(logits up to {r['max_abs_logit']:.1f}), "
            f"argmax agreement {100 * r['argmax_agreement']:.3f}%")  # fmt: skip
    return rows
