import threading

import cv2
import numpy as np
import pytest
from helpers import make_checkpoint

from segmnv3 import Segmenter
from segmnv3.cli.predict import main as predict_main
from segmnv3.config import load_config
from segmnv3.data.synthetic import CLASSES, PALETTE, SyntheticSegmentation
from segmnv3.inference.stream import VideoError, VideoWriter, prefetch, segment_video


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    ckpt = make_checkpoint(tmp_path_factory.mktemp("m") / "m.pt", config, CLASSES, PALETTE)
    return Segmenter.from_checkpoint(ckpt, backend="torch", precision="fp32")


def _clip(path, count=12, size=(64, 96), fps=12.0):
    """A clip of sample scenes (MJPG .avi: decodes close to what was written)."""
    scenes = SyntheticSegmentation("val", count, size=size)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size[::-1])
    for i in range(count):
        writer.write(cv2.cvtColor(scenes.load(i)[0], cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _decoded(path):
    capture, frames = cv2.VideoCapture(str(path)), []
    while (read := capture.read())[0]:
        frames.append(cv2.cvtColor(read[1], cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def test_stream_keeps_count_order_and_equals_predict(seg, tmp_path):
    clip = _clip(tmp_path / "c.avi")
    frames = _decoded(clip)
    streamed = list(seg.stream(clip))
    assert len(streamed) == len(frames) == 12
    for (frame, mask), expected in zip(streamed, frames, strict=True):
        assert np.array_equal(frame, expected)  # in order
        assert np.array_equal(mask, seg.predict(expected))
    # Any iterable of frames works too.
    assert [m.shape for _, m in seg.stream(iter(frames[:3]))] == [(64, 96)] * 3


def test_overlay_video_reads_back_with_size_rate_and_count(seg, tmp_path):
    clip = _clip(tmp_path / "c.avi", fps=12.0)
    report = segment_video(seg, clip, tmp_path / "out" / "c.mp4", frames_dir=tmp_path / "f")
    assert report["frames"] == 12 and report["fps"] > 0 and "torch fp32" in report["runtime"]
    capture = cv2.VideoCapture(str(tmp_path / "out" / "c.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0, abs=0.01)
    size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    assert size == (96, 64)
    masks = sorted((tmp_path / "f").glob("*.png"))
    assert [m.name for m in masks[:2]] == ["000000.png", "000001.png"] and len(masks) == 12
    first = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(first, seg.predict(_decoded(clip)[0]))


def test_a_truncated_video_keeps_what_was_done(seg, tmp_path):
    clip = _clip(tmp_path / "c.avi", count=30)
    data = clip.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"cut.avi: frame \d+ of 30 cannot be decoded") as info:
        segment_video(seg, tmp_path / "cut.avi", tmp_path / "cut.mp4")
    assert "plays" in str(info.value)
    done = _decoded(tmp_path / "cut.mp4")
    assert 5 < len(done) < 30 and done[0].shape == (64, 96, 3)


def test_sources_that_cannot_be_opened(seg, tmp_path):
    with pytest.raises(VideoError, match="camera 57 cannot be opened"):
        list(seg.stream(57))
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoError, match="bad.mp4: cannot open it as a video"):
        list(seg.stream(tmp_path / "bad.mp4"))


def test_variable_size_frames_and_no_frame_rate(seg, tmp_path):
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)]
    frames.append(np.full((30, 50, 3), 200, np.uint8))  # another size mid-stream
    report = segment_video(seg, frames, tmp_path / "v.mp4")
    assert report["frames"] == 4 and report["source_fps"] is None
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)  # the default rate
    assert len(_decoded(tmp_path / "v.mp4")) == 4


def test_interrupt_closes_a_playable_file(seg, tmp_path):
    def frames():
        for i in range(100):
            if i == 6:
                raise KeyboardInterrupt
            yield np.full((48, 64, 3), 20 * i, np.uint8)

    with pytest.raises(KeyboardInterrupt):
        segment_video(seg, frames(), tmp_path / "i.mp4")
    assert len(_decoded(tmp_path / "i.mp4")) == 6


def test_prefetch_is_bounded_and_stops_its_thread():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    it = prefetch(items(), depth=3)
    assert next(it) == 0
    threading.Event().wait(0.2)
    assert len(produced) <= 6  # bounded: not the whole source
    it.close()
    assert not any(t.name == "segmnv3-decode" for t in threading.enumerate())


def test_video_writer_reports_an_unwritable_file(tmp_path):
    writer = VideoWriter(tmp_path / "v.xyz", 10)
    writer.write(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(OSError, match="cannot write video"):
        writer.close()


def test_predict_tool_on_a_video(seg, tmp_path, capsys):
    clip = _clip(tmp_path / "in" / "c.avi")
    ckpt = tmp_path / "m.pt"
    make_checkpoint(ckpt, load_config(overrides=["model.backbone=mobilenet_v3_small"]), CLASSES,
                    PALETTE)  # fmt: skip
    code = predict_main([str(clip), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"),
                         "--frames", "--no-progress", "--backend", "torch"])  # fmt: skip
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    assert "12 frames in" in out and "frames/s" in out and "torch" in out
    assert (tmp_path / "out" / "c.avi").is_file() and len(
        _decoded(tmp_path / "out" / "c.avi")
    ) == 12
    assert len(list((tmp_path / "out" / "c.frames").glob("*.png"))) == 12


def _ckpt(tmp_path):
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    return make_checkpoint(tmp_path / "m.pt", config, CLASSES, PALETTE)


def _predict(tmp_path, *args):
    return predict_main([*map(str, args), "--checkpoint", str(_ckpt(tmp_path)), "--no-progress",
                         "--backend", "torch"])  # fmt: skip


def test_an_odd_sized_video_keeps_every_pixel(seg, tmp_path):
    frames = [SyntheticSegmentation("val", 3, size=(177, 333)).load(i)[0] for i in range(3)]
    report = segment_video(seg, frames, tmp_path / "odd.avi", frames_dir=tmp_path / "f")
    assert report["size"] == [334, 178]  # one copied row and column: the encoders need even
    decoded = _decoded(tmp_path / "odd.avi")
    assert len(decoded) == 3 and decoded[0].shape == (178, 334, 3)
    masks = sorted((tmp_path / "f").glob("*.png"))
    assert [cv2.imread(str(m), cv2.IMREAD_UNCHANGED).shape for m in masks] == [(177, 333)] * 3
    picture = seg.overlay(frames[0], seg.predict(frames[0]))
    # MJPG is lossy: the source's pixels are there, close to the overlay drawn
    assert np.abs(decoded[0][:177, :333].astype(int) - picture).mean() < 12


def test_an_empty_video_fails_and_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "in" / "empty.avi"
    empty.parent.mkdir()
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.release()
    assert _predict(tmp_path, empty, "--out", tmp_path / "out") == 2
    assert "empty.avi: the video holds no frame" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_overwrite_leaves_only_the_new_runs_frames(tmp_path):
    clip = _clip(tmp_path / "in" / "c.avi", count=10)
    out = tmp_path / "out"
    assert _predict(tmp_path, clip, "--out", out, "--frames") == 0
    assert len(list((out / "c.frames").glob("*.png"))) == 10
    (out / "c.frames" / "notes.txt").write_text("kept")
    assert _predict(tmp_path, clip, "--out", out, "--frames", "--overwrite", "--max-frames", 3) == 0
    assert sorted(p.name for p in (out / "c.frames").iterdir()) == [
        "000000.png", "000001.png", "000002.png", "notes.txt"]  # fmt: skip


def test_a_bad_video_among_inputs_fails_before_any_output(tmp_path, capsys):
    good = _clip(tmp_path / "in" / "a.avi")
    bad = tmp_path / "in" / "b.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    assert _predict(tmp_path, good, bad, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "b.mp4" in err and "image" not in err
    assert not (tmp_path / "out").exists()
