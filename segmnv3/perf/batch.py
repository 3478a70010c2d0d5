"""Batch prediction at scale: images/s of ``predict_seg.py`` over a folder of JPEGs, one
process against ``--ray local`` with 1 and 2 actors, each a fresh process timed from start
to exit (what a user waits for) and, for Ray, the job alone (its summary line), in
interleaved turns."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
from tqdm import tqdm

from ..data.synthetic import SyntheticSegmentation

_RUN = "from segmnv3.cli.predict import main; raise SystemExit(main())"
_JOB = re.compile(r"ray: (\d+) images in ([\d.]+) s")


def write_survey(folder: Path, images: int, size: tuple[int, int], folders: int = 8) -> None:
    """``images`` JPEGs of synthetic scenes at ``size`` (H, W), in ``folders`` subfolders."""
    scenes = SyntheticSegmentation("val", num_samples=16, size=size)
    pictures = [cv2.cvtColor(scenes.load(i)[0], cv2.COLOR_RGB2BGR) for i in range(16)]
    for i in tqdm(range(images), desc="writing JPEGs", leave=False):
        target = folder / f"site{i % folders}" / f"img{i:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), pictures[i % len(pictures)], [cv2.IMWRITE_JPEG_QUALITY, 90])


def _modes(threads: int) -> dict[str, list[str]]:
    return {
        "one process": ["--threads", str(threads)],
        "--ray local --actors 1": [
            "--ray",
            "local",
            "--actors",
            "1",
            "--cpus-per-actor",
            str(threads),
            "--threads",
            str(threads),
        ],  # fmt: skip
        "--ray local --actors 2": [
            "--ray",
            "local",
            "--actors",
            "2",
            "--cpus-per-actor",
            str(threads / 2),
            "--threads",
            str(max(1, threads // 2)),
        ],  # fmt: skip
    }


def ray_batch(checkpoint: str | Path, images: int = 2000, size: tuple[int, int] = (512, 1024),
              threads: int = 2, turns: int = 1, log=print) -> list[dict]:  # fmt: skip
    """Rows of mode, turn, seconds from start to exit, images/s over that and, for Ray,
    the job's own seconds and images/s (the cluster's and actors' start excluded)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="segmnv3-batch-") as tmp:
        survey = Path(tmp) / "survey"
        write_survey(survey, images, size)
        pattern = str(survey / "**" / "*.jpg")
        log(f"batch prediction: {images} JPEGs of {size[1]}x{size[0]} in 8 folders, "
            f"{threads} threads, {turns} turn(s)")  # fmt: skip
        for turn in range(turns):
            for mode, flags in _modes(threads).items():
                out = Path(tmp) / f"out-{turn}-{len(rows)}"
                cmd = [sys.executable, "-c", _RUN, pattern, "--out", str(out), "--checkpoint",
                       str(checkpoint), "--no-progress", *flags]  # fmt: skip
                began = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True)
                seconds = time.perf_counter() - began
                if done.returncode != 0:
                    raise RuntimeError(f"{mode} failed: {done.stderr.strip()[-400:]}")
                job = _JOB.search(done.stdout)
                job_s = float(job.group(2)) if job else None
                row = {"mode": mode, "turn": turn, "seconds": seconds,
                       "images_per_s": images / seconds, "job_seconds": job_s,
                       "job_images_per_s": images / job_s if job else None}  # fmt: skip
                rows.append(row)
                job_text = f"; the job {job_s:.1f} s, {images / job_s:.1f} images/s" if job else ""
                log(f"  {mode:24s} turn {turn}: {seconds:6.1f} s start to exit, "
                    f"{row['images_per_s']:5.1f} images/s{job_text}")  # fmt: skip
    return rows
