"""Video and camera streams: frames decoded, segmented and written in overlapping stages.

Decoding runs in a thread that fills a bounded queue, the network runs in the caller's
thread, and :class:`VideoWriter` turns logits into labels, draws and encodes in a thread of
its own behind another bounded queue:
throughput approaches the slowest stage instead of the sum, memory stays bounded whatever
the video's length, and frames keep their order (one thread per stage).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..io import write_png

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")
DEFAULT_FPS = 30.0  # for sources that do not say (cameras often report 0)
_END = object()


class VideoError(ValueError):
    """A video or camera that cannot be read on (the frames before it were delivered)."""


@dataclass
class VideoInfo:
    name: str  # the file, "camera N" or "frames"
    fps: float | None  # None when the source does not say
    frames: int | None  # declared frame count (files only)
    size: tuple[int, int] | None  # (width, height) of the first frame, when known


def open_video(source: str | Path | int) -> tuple[cv2.VideoCapture, VideoInfo]:
    """An OpenCV capture of a video file or a camera index, checked."""
    if isinstance(source, int):
        capture = cv2.VideoCapture(source)
        name = f"camera {source}"
        if not capture.isOpened():
            raise VideoError(f"{name} cannot be opened (is it connected and free?)")
    else:
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"video not found: {path}")
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise VideoError(f"{path}: cannot open it as a video (corrupt or unknown format)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if not isinstance(source, int) else 0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return capture, VideoInfo(name, fps if 0 < fps < 1000 else None, count or None,
                              size if min(size) > 0 else None)  # fmt: skip


def read_frames(capture: cv2.VideoCapture, info: VideoInfo) -> Iterator[np.ndarray]:
    """RGB frames of an open capture; a file that ends before its declared frame count is a
    :class:`VideoError` naming the file and the frame (after the frames that decoded)."""
    done = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            done += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
    # Containers round their declared count; a shortfall of a frame or two is not damage.
    if info.frames is not None and done < info.frames - 2:
        raise VideoError(
            f"{info.name}: frame {done + 1} of {info.frames} cannot be decoded (truncated or "
            f"corrupt); the {done} frames before it were processed"
        )


def frame_source(source: str | Path | int | Iterable[np.ndarray]):
    """``(frames, info)`` for a video file, a camera index or any iterable of RGB frames."""
    if isinstance(source, str | Path | int):
        capture, info = open_video(source)
        return read_frames(capture, info), info
    return iter(source), VideoInfo("frames", None, None, None)


def prefetch(frames: Iterable, depth: int = 4) -> Iterator:
    """Iterate ``frames`` from a background thread, at most ``depth`` items ahead; errors
    arrive in order, after the items before them. Closing the iterator stops the thread."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(exc)

    thread = threading.Thread(target=produce, name="segmnv3-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class VideoWriter:
    """Encodes frames to a video file in a thread behind a bounded queue; ``render`` (run in
    that thread too) turns what is written into the RGB picture, e.g. an overlay. Frames of
    another size than the first are resized to it. ``close()`` (also on exceptions and
    Ctrl-C, as a context manager) finishes the file so it plays."""

    def __init__(
        self,
        path: str | Path,
        fps: float | None,
        render: Callable[[object], np.ndarray] | None = None,
        depth: int = 8,
    ) -> None:
        self.path, self.fps, self.render = Path(path), fps or DEFAULT_FPS, render
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self.size: tuple[int, int] | None = None  # as written: even (see even_size)
        self.source_size: tuple[int, int] | None = None
        self._writer: cv2.VideoWriter | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="segmnv3-encode", daemon=True)
        self._thread.start()

    def write(self, item) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def _open(self, frame: np.ndarray) -> cv2.VideoWriter:
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size)
        if not writer.isOpened():
            raise OSError(f"cannot write video {self.path} (folder writable? codec available?)")
        return writer

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self._error is not None:
                continue  # drain: the producer learns of the error on its next write
            try:
                frame = item if self.render is None else self.render(item)
                if self._writer is None:
                    self.source_size = (frame.shape[1], frame.shape[0])
                    self.size = even_size(*self.source_size)
                    self._writer = self._open(frame)
                if (frame.shape[1], frame.shape[0]) != self.source_size:
                    frame = cv2.resize(frame, self.source_size, interpolation=cv2.INTER_AREA)
                self._writer.write(cv2.cvtColor(pad_to(frame, self.size), cv2.COLOR_RGB2BGR))
                self.frames += 1
            except BaseException as exc:
                self._error = exc

    def close(self) -> None:
        self._queue.put(_END)
        self._thread.join()
        if self._writer is not None:
            self._writer.release()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def even_size(width: int, height: int) -> tuple[int, int]:
    """The encoders behind OpenCV's writer (MPEG-4, MJPEG, ...) store even sizes only and
    would drop an odd last row or column; the video is one pixel larger instead."""
    return width + width % 2, height + height % 2


def pad_to(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` with its last row/column repeated up to ``size`` (width, height)."""
    dw, dh = size[0] - frame.shape[1], size[1] - frame.shape[0]
    if not dw and not dh:
        return frame
    return cv2.copyMakeBorder(frame, 0, dh, 0, dw, cv2.BORDER_REPLICATE)


def check_video(path: str | Path) -> VideoInfo:
    """Open ``path`` and decode its first frame, so that a video that can't be read fails
    before any output of a run is written; a video without frames is an error too."""
    capture, info = open_video(path)
    try:
        ok, _ = capture.read()
    finally:
        capture.release()
    if not ok:
        raise VideoError(f"{info.name}: the video holds no frame that decodes (empty or corrupt)")
    return info


def clear_frames(frames_dir: Path) -> None:
    """Remove an earlier run's per-frame masks (``NNNNNN.png``) from ``frames_dir``, so that
    a run with ``--overwrite`` leaves only its own frames there; other files stay."""
    if frames_dir.is_dir():
        for old in frames_dir.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
            old.unlink()


def stream_masks(
    predict: Callable[[np.ndarray], np.ndarray],
    source: str | Path | int | Iterable[np.ndarray],
    depth: int = 4,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(frame, mask)`` per frame of ``source``, in order, frames decoded ahead in a thread."""
    frames, _ = frame_source(source)
    for frame in prefetch(frames, depth):
        yield frame, predict(frame)


def segment_video(
    segmenter,
    source: str | Path | int | Iterable[np.ndarray],
    video_path: str | Path,
    *,
    frames_dir: str | Path | None = None,
    max_frames: int | None = None,
    progress: bool = False,
) -> dict:
    """Write the overlay video of ``source`` (same frame rate and size; a key of the classes
    present on each frame) and, with ``frames_dir``, a mask PNG per frame. Decoding,
    the network and drawing/encoding run in three overlapping stages. Returns frames,
    seconds, frames/s and the runtime. A video that breaks off ends with the frames done
    written and playable, then a :class:`VideoError` naming the file and frame."""
    frames, info = frame_source(source)
    if frames_dir is not None:
        clear_frames(Path(frames_dir))

    def render(item) -> np.ndarray:
        index, frame, low = item
        mask = segmenter.labels(low, frame.shape[:2])  # here, overlapping the next forward
        if frames_dir is not None:
            write_png(Path(frames_dir) / f"{index:06d}.png", mask)
        return segmenter.overlay(frame, mask)

    count, start = 0, time.perf_counter()
    total = min(filter(None, (info.frames, max_frames)), default=None)
    bar = tqdm(total=total, unit="frame", desc=info.name, disable=not progress)
    try:
        with VideoWriter(video_path, info.fps, render) as writer:
            for frame in prefetch(frames):
                writer.write((count, frame, segmenter.logits(frame)))
                count += 1
                bar.update()
                if max_frames is not None and count >= max_frames:
                    break
    except VideoError as exc:
        raise VideoError(f"{exc}; {video_path} holds them and plays") from None
    finally:
        bar.close()
    if count == 0:
        Path(video_path).unlink(missing_ok=True)
        raise VideoError(f"{info.name}: no frames to segment (an empty video); nothing written")
    seconds = time.perf_counter() - start
    return {"source": info.name, "video": str(video_path), "frames": count,
            "size": list(writer.size) if writer.size else None,
            "seconds": round(seconds, 3), "fps": round(count / max(seconds, 1e-9), 2),
            "source_fps": info.fps, "runtime": segmenter.describe()}  # fmt: skip
