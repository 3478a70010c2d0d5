"""Video throughput: a generated clip of sample scenes through a checkpoint, the pipelined
path (``segment_video``: decode, network and drawing/encoding overlapped) against a plain
sequential loop doing the same work, both writing the overlay video."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2

from ..inference import Segmenter
from ..inference.stream import segment_video
from .deployed import sample_scene


def write_clip(path: Path, frames: int, size: tuple[int, int], fps: float = 30.0) -> Path:
    """An mp4 of ``frames`` sample scenes at ``size`` (H, W): 8 scenes, each held a while
    and shifted a little per frame, like footage."""
    scenes = [sample_scene(size[0], size[1] + 64, i) for i in range(8)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size[::-1])
    for i in range(frames):
        shift = i % 64
        frame = scenes[(i // 40) % len(scenes)][:, shift : shift + size[1]]
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def sequential(seg: Segmenter, clip: Path, out: Path) -> float:
    """Frames/s of the obvious loop: read, predict, draw, encode, one after the other."""
    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    writer, count, start = None, 0, time.perf_counter()
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        picture = seg.overlay(frame, seg.predict(frame))
        if writer is None:
            size = (picture.shape[1], picture.shape[0])
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        count += 1
    writer.release()
    capture.release()
    return count / (time.perf_counter() - start)


def video_throughput(
    seg: Segmenter, sizes=((512, 1024), (256, 512)), frames: int = 300, log=print
) -> list[dict]:
    """Pipelined and sequential frames/s per size, overlay video written in both."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for h, w in sizes:
            clip = write_clip(Path(tmp) / f"clip_{w}x{h}.mp4", frames, (h, w))
            seq = sequential(seg, clip, Path(tmp) / "seq.mp4")
            report = segment_video(seg, clip, Path(tmp) / "pipe.mp4")
            row = {"size": f"{w}x{h}", "frames": report["frames"], "pipelined_fps": report["fps"],
                   "sequential_fps": round(seq, 2), "runtime": seg.describe()}  # fmt: skip
            rows.append(row)
            log(f"video {w}×{h}, {frames} frames, overlay video written ({seg.describe()}): "
                f"pipelined {row['pipelined_fps']:.1f} frames/s, "
                f"sequential {seq:.1f} frames/s")  # fmt: skip
    return rows
