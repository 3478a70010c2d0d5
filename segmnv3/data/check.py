"""A dataset check: what a folder holds, read the way training will read it.

``check_dataset(root)`` reads every item of every split and reports the layout, the splits
and their counts, the classes with their pixel shares, the image sizes and every problem
with its file: items that cannot be read (a mask without its image, unknown values, sizes
that differ: the adapters' errors, which name the file), what an adapter skipped, and
classes that never appear. Problems that would stop training are ``breaking``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import DATASETS, build_dataset, dataset_splits, detect_layout

IGNORE = 255


@dataclass
class Problem:
    where: str  # the split, and the item's file when there is one
    message: str
    breaking: bool


@dataclass
class SplitReport:
    name: str
    count: int = 0
    pixels: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))
    images_with: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))
    sizes: Counter = field(default_factory=Counter)  # (width, height) → images


@dataclass
class DataReport:
    layout: str
    root: Path
    options: dict
    classes: list[str] = field(default_factory=list)
    palette: list = field(default_factory=list)
    splits: dict[str, SplitReport] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    samples: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def breaking(self) -> list[Problem]:
        return [p for p in self.problems if p.breaking]

    def pixels(self) -> np.ndarray:
        """Pixels of each class and of ignore (last), over every split."""
        total = sum((s.pixels for s in self.splits.values()), np.zeros(256, np.int64))
        return np.append(total[: len(self.classes)], total[IGNORE])


class _Collect(logging.Handler):
    """The warnings adapters log while a split is built (e.g. skipped unannotated images)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check_dataset(
    root: str | Path,
    fmt: str = "auto",
    options: dict | None = None,
    samples: int = 4,
    progress: Callable | None = None,
) -> DataReport:
    """Read every item of every split of ``root`` (in ``fmt``, or detected) and report."""
    root, options = Path(root), dict(options or {})
    if fmt == "auto":
        fmt, found = detect_layout(root)
        options = {**found, **options}
    if fmt not in DATASETS or fmt == "auto":
        raise ValueError(f"unknown dataset format {fmt!r}; choose one of {sorted(DATASETS)}")
    report = DataReport(fmt, root, options)
    for split in dataset_splits(DATASETS[fmt], root, options) or [None]:
        dataset = _build(report, split, progress)
        if dataset is not None:
            _read_split(report, dataset, split or "(all)", samples, progress)
    _absent_classes(report)
    return report


def _build(report: DataReport, split, progress):
    collect, logger = _Collect(), logging.getLogger("segmnv3.data")
    logger.addHandler(collect)
    try:
        dataset = build_dataset(report.layout, split, report.root, **report.options)
    except (OSError, ValueError) as exc:
        report.problems.append(Problem(str(split), str(exc), breaking=True))
        return None
    finally:
        logger.removeHandler(collect)
    report.problems += [Problem(str(split), m, breaking=False) for m in collect.messages]
    if not report.classes:
        report.classes, report.palette = list(dataset.classes), list(dataset.palette)
    elif list(dataset.classes) != report.classes:
        message = f"its classes {list(dataset.classes)} differ from the first split's"
        report.problems.append(Problem(str(split), f"{message} {report.classes}", True))
    return dataset


def _read_split(report: DataReport, dataset, split: str, samples: int, progress) -> None:
    stats = report.splits.setdefault(split, SplitReport(split))
    items = range(len(dataset))
    for i in progress(items, desc=split) if progress else items:
        try:
            image, mask = dataset.load(i)
        except (OSError, ValueError) as exc:
            report.problems.append(Problem(f"{split} {dataset.filename(i)}", str(exc), True))
            continue
        counts = np.bincount(mask.ravel(), minlength=256)
        stats.count += 1
        stats.pixels += counts
        stats.images_with += counts > 0
        stats.sizes[(image.shape[1], image.shape[0])] += 1
        if len(report.samples) < samples:
            report.samples.append((f"{split}/{dataset.filename(i)}", image, mask))


def _absent_classes(report: DataReport) -> None:
    for k, name in enumerate(report.classes):
        missing = [s for s, stats in report.splits.items() if stats.count and not stats.pixels[k]]
        if len(missing) == len(report.splits) and missing:
            report.problems.append(Problem("all", f"class {k} {name!r} never appears", False))
        elif missing:
            report.problems.append(Problem(", ".join(missing), f"class {k} {name!r} does not "
                                           "appear in this split", False))  # fmt: skip
