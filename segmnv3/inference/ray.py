"""Prediction over a Ray cluster through Ray Data: a pool of Segmenter actors
(``ActorPoolStrategy``), each loading the model once, mapped over batches of images.

``segment_dataset(ds, source)`` takes a Ray Dataset with an ``image`` column (H×W×3 uint8
arrays) and returns one with a ``labels`` column, for users' own pipelines.
``predict_on_ray(...)`` is ``predict_seg.py --ray``: the same files, names and rules as the
one-process tool (planned by :mod:`segmnv3.inference.files`), each output written atomically
by the actor that made it; an unreadable image is reported by name, not fatal. Object-store
URIs (``s3://bucket/survey/``, ``gs://…``, ``abfs://…``, ``hdfs://…``, ``file://…``: what
``pyarrow.fs.FileSystem.from_uri`` opens, with its query options such as
``?endpoint_override=…``) are listed here and their bytes read by Ray Data's
``read_binary_files`` on the cluster (:func:`list_uris`).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import numpy as np

from ..io import IMAGE_EXTENSIONS, check_complete, decode_image, read_image, write_png


def _require():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ValueError("Ray is not installed: pip install 'segmnv3[ray]'") from None
    return ray


class _Predictor:
    """An actor: the Segmenter built once, then batches of images → labels."""

    def __init__(self, source: str, options: dict) -> None:
        from .segmenter import Segmenter

        self.segmenter = Segmenter.from_checkpoint(source, **options)

    def __call__(self, batch: dict) -> dict:
        batch["labels"] = np.stack([self.segmenter.predict(x) for x in batch["image"]])
        return batch


class _Writer(_Predictor):
    """An actor that reads, predicts and writes each planned output (a failure is a row).
    Rows carry a local ``path`` to read, or (object-store inputs) the ``bytes`` Ray's reader
    fetched, with the outputs planned for each path in ``targets``."""

    def __init__(self, source: str, options: dict, targets: dict | None = None) -> None:
        super().__init__(source, options)
        self.targets = targets

    def _image(self, batch: dict, i: int) -> np.ndarray:
        path = batch["path"][i]
        if "bytes" not in batch:
            return read_image(path)
        data = np.frombuffer(batch["bytes"][i], dtype=np.uint8)
        return decode_image(check_complete(data, path), path)

    def _plan(self, batch: dict, i: int) -> tuple[str, str, str]:
        if self.targets is not None:
            return self.targets[batch["path"][i]]
        return batch["mask"][i], batch["color"][i], batch["overlay"][i]

    def __call__(self, batch: dict) -> dict:
        errors = []
        for i in range(len(batch["path"])):
            try:
                rgb = self._image(batch, i)
                mask_file, color_file, overlay_file = self._plan(batch, i)
                mask = self.segmenter.predict(rgb)
                write_png(mask_file, mask)
                if color_file:
                    write_png(color_file, self.segmenter.colorize(mask))
                if overlay_file:
                    write_png(overlay_file, self.segmenter.overlay(rgb, mask))
                errors.append("")
            except (OSError, ValueError) as exc:
                errors.append(" ".join(str(exc).split()) or type(exc).__name__)
        return {"path": batch["path"], "error": np.array(errors, dtype=object)}


def _compute(actors: int):
    from ray.data import ActorPoolStrategy

    return ActorPoolStrategy(size=actors)


def segment_dataset(ds, source: str | Path, *, actors: int = 1, cpus: float = 1,
                    gpus: float = 0, batch_size: int = 4, **options):  # fmt: skip
    """``ds`` (an ``image`` column of H×W×3 uint8 arrays of one size per batch) with a
    ``labels`` column (H×W uint8), by ``actors`` Segmenter actors of ``cpus``/``gpus``
    each; ``options`` go to ``Segmenter.from_checkpoint``."""
    _require()
    return ds.map_batches(_Predictor, fn_constructor_args=(str(source), options),
                          compute=_compute(actors), num_cpus=cpus, num_gpus=gpus,
                          batch_size=batch_size, batch_format="numpy")  # fmt: skip


def start(address: str, cpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start one on this machine for ``local``."""
    ray = _require()
    if ray.is_initialized():
        return
    if address == "local":
        ray.init(num_cpus=cpus or os.cpu_count(), include_dashboard=False,
                 log_to_driver=False)  # fmt: skip
    else:
        ray.init(address=address, log_to_driver=False)


def list_uris(uris: list[str]):
    """The images under object-store URIs (each a file or a folder, listed recursively) →
    ``(filesystem, [PurePosixPath of each image])``, sorted; all on one filesystem."""
    from pyarrow import fs as pafs

    filesystem, found = None, []
    for uri in uris:
        try:
            fs, root = pafs.FileSystem.from_uri(uri)
            info = fs.get_file_info(root)
            if info.type == pafs.FileType.Directory:
                infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
            else:
                infos = [info]
        except (OSError, ValueError) as exc:
            raise ValueError(f"{uri}: cannot open it ({' '.join(str(exc).split())})") from None
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"no such object or folder: {uri}")
        if filesystem is not None and not fs.equals(filesystem):
            raise ValueError(f"{uri} is on another filesystem than {uris[0]}: one run reads "
                             "one filesystem")  # fmt: skip
        filesystem = fs
        images = sorted(PurePosixPath(i.path) for i in infos if i.type == pafs.FileType.File
                        and PurePosixPath(i.path).suffix.lower() in IMAGE_EXTENSIONS)  # fmt: skip
        if not images:
            raise FileNotFoundError(f"no images under {uri}")
        found += images
    return filesystem, list(dict.fromkeys(found))


def _rows(plans) -> list[dict]:
    return [{"path": str(p), "mask": str(plan["mask"]), "color": str(plan.get("color", "")),
             "overlay": str(plan.get("overlay", ""))} for p, plan in plans]  # fmt: skip


def predict_on_ray(plans, source: str | Path, *, address: str = "local", actors: int = 1,
                   cpus: float = 1, gpus: float = 0, batch_size: int = 4, filesystem=None,
                   progress: bool = True, **options) -> list[tuple[str, str]]:  # fmt: skip
    """Write the planned outputs of every image on a Ray cluster; returns the failures as
    ``(path, reason)``. With ``filesystem`` (from :func:`list_uris`) the plans' paths are
    its objects, read by Ray Data's reader; otherwise local files read by the actors.
    Videos are refused (one video is one process's stream)."""
    ray = _require()
    videos = [p for p, plan in plans if "video" in plan]
    if videos:
        raise ValueError(f"--ray predicts images; {videos[0]} is a video (run it without --ray)")
    start(address, None)
    if not progress:  # otherwise Ray's own: bars on a terminal, logged lines elsewhere
        ray.data.DataContext.get_current().enable_progress_bars = False
    if not plans:
        return []
    if filesystem is None:
        ds, targets = ray.data.from_items(_rows(plans)), None
    else:
        # Reading is I/O: its tasks take no CPU, or actors holding every CPU would starve it
        ds = ray.data.read_binary_files([str(p) for p, _ in plans], filesystem=filesystem,
                                        include_paths=True, concurrency=2 * actors,
                                        num_cpus=0)  # fmt: skip
        targets = {r["path"]: (r["mask"], r["color"], r["overlay"]) for r in _rows(plans)}
    ds = ds.map_batches(
        _Writer, fn_constructor_args=(str(source), options, targets), compute=_compute(actors),
        num_cpus=cpus, num_gpus=gpus, batch_size=batch_size, batch_format="numpy")  # fmt: skip
    return [(r["path"], r["error"]) for r in ds.take_all() if r["error"]]
