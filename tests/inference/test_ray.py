"""predict_seg.py --ray and segment_dataset on a local Ray cluster (2 CPUs, stopped at the
end): the same masks, bit for bit and by the same names, as the one-process tool."""

import faulthandler
import os
import socket
import subprocess
import sys
import time

import cv2
import pytest
import ray
from helpers import make_checkpoint

from segmnv3 import Segmenter
from segmnv3.cli.predict import main
from segmnv3.config import load_config
from segmnv3.data.synthetic import CLASSES, PALETTE, SyntheticSegmentation


@pytest.fixture(autouse=True)
def bounded():
    """Each test is bounded to 4 minutes: a stuck Ray job ends the run with every thread's
    traceback (faulthandler's watchdog works while Ray blocks in C), it does not hang CI."""
    faulthandler.dump_traceback_later(240, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    ckpt = make_checkpoint(tmp / "m.pt", config, CLASSES, PALETTE)
    scenes = SyntheticSegmentation("val", 6, size=(48, 64))
    for i in range(6):  # nested folders, and the same file name in two of them
        folder = tmp / "in" / ("a" if i % 2 else "b") / ("deep" if i > 3 else "")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"x{i % 4}.png"), cv2.cvtColor(scenes.load(i)[0],
                                                                  cv2.COLOR_RGB2BGR))  # fmt: skip
    return tmp, ckpt


def test_ray_writes_what_one_process_writes(cluster, tree, capsys):
    tmp, ckpt = tree
    glob = str(tmp / "in" / "**" / "*.png")
    common = ["--checkpoint", str(ckpt), "--backend", "onnxruntime", "--no-progress"]
    assert main([glob, "--out", str(tmp / "one"), *common]) == 0
    assert main([glob, "--out", str(tmp / "ray"), *common, "--ray", "local", "--actors", "2"]) == 0
    assert "ray: 6 images in" in capsys.readouterr().out
    one = sorted(p.relative_to(tmp / "one") for p in (tmp / "one").rglob("*.png"))
    assert len(one) == 6 and one == sorted(p.relative_to(tmp / "ray")
                                           for p in (tmp / "ray").rglob("*.png"))  # fmt: skip
    assert all((tmp / "one" / n).read_bytes() == (tmp / "ray" / n).read_bytes() for n in one)
    assert main([glob, "--out", str(tmp / "ray"), *common, "--ray", "local"]) == 2  # no clash


def test_failures_are_listed_and_resume_skips_what_is_written(cluster, tree, capsys):
    tmp, ckpt = tree
    broken = tmp / "in" / "a" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\ncut off")
    glob = str(tmp / "in" / "**" / "*.png")
    args = [glob, "--out", str(tmp / "r2"), "--checkpoint", str(ckpt), "--backend",
            "onnxruntime", "--ray", "local"]  # fmt: skip
    assert main(args) == 1
    captured = capsys.readouterr()
    assert f"failed: {broken}: {broken}: truncated PNG" in captured.out
    assert "1 of 7 images failed (listed above)" in captured.err
    assert len(list((tmp / "r2").rglob("*.png"))) == 6
    broken.unlink()
    assert main([*args, "--resume"]) == 0
    assert "--resume: 6 of 6 inputs already written" in capsys.readouterr().out


def test_segment_dataset_adds_labels(cluster, tree):
    from segmnv3.inference.ray import segment_dataset

    tmp, ckpt = tree
    images = [SyntheticSegmentation("val", 2, size=(48, 64)).load(i)[0] for i in range(2)]
    ds = ray.data.from_items([{"image": img} for img in images])
    rows = segment_dataset(ds, ckpt, batch_size=2, backend="onnxruntime").take_all()
    seg = Segmenter.from_checkpoint(ckpt, backend="onnxruntime")
    assert len(rows) == 2
    for row, image in zip(rows, images, strict=True):
        assert row["labels"].shape == (48, 64) and (row["labels"] == seg.predict(image)).all()


def _same_masks(first, second) -> int:
    names = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert names == sorted(p.relative_to(second) for p in second.rglob("*.png"))
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
    return len(names)


def test_file_uris_are_read_by_ray_data_with_the_local_rules(cluster, tree, capsys):
    tmp, ckpt = tree
    common = ["--checkpoint", str(ckpt), "--backend", "onnxruntime", "--no-progress"]
    assert main([str(tmp / "in" / "**" / "*.png"), "--out", str(tmp / "u1"), *common]) == 0
    uri = (tmp / "in").as_uri()  # a folder URI: listed recursively, like an object store prefix
    assert main([uri, "--out", str(tmp / "u2"), *common, "--ray", "local"]) == 0
    assert "ray: 6 images in" in capsys.readouterr().out
    assert _same_masks(tmp / "u1", tmp / "u2") == 6
    # never over an input: a PNG input whose mask would be itself
    single = (tmp / "in" / "a").as_uri()
    assert main([single, "--out", str(tmp / "in" / "a"), *common, "--ray", "local"]) == 2
    assert "is an input file" in capsys.readouterr().err
    assert main([uri, str(tmp / "in"), "--out", str(tmp / "u3"), *common, "--ray", "local"]) == 2
    assert "is a URI and" in capsys.readouterr().err
    assert main([uri, "--out", str(tmp / "u4"), *common]) == 2  # a URI needs --ray
    assert "add --ray local|ADDRESS" in capsys.readouterr().err
    missing = (tmp / "nowhere").as_uri()
    assert main([missing, "--out", str(tmp / "u5"), *common, "--ray", "local"]) == 2
    assert f"no such object or folder: {missing}" in capsys.readouterr().err


def test_list_files_name_inputs_with_or_without_ray(cluster, tree, capsys):
    tmp, ckpt = tree
    listing = tmp / "inputs.txt"  # relative lines are from the list's folder
    listing.write_text("# survey, day 1\nin/a/x1.png\n\nin/b/*.png\n")
    common = ["--checkpoint", str(ckpt), "--backend", "onnxruntime", "--no-progress"]
    assert main([str(listing), "--out", str(tmp / "l1"), *common]) == 0
    written = sorted(p.relative_to(tmp / "l1") for p in (tmp / "l1").rglob("*.png"))
    assert [str(p) for p in written] == ["a/x1.png", "b/x0.png", "b/x2.png"]
    assert main([str(listing), "--out", str(tmp / "l2"), *common, "--ray", "local"]) == 0
    assert _same_masks(tmp / "l1", tmp / "l2") == 3
    empty = tmp / "empty.txt"
    empty.write_text("# nothing\n")
    assert main([str(empty), "--out", str(tmp / "l3"), *common]) == 2
    assert f"list file {empty} names no inputs" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tree):
    """A bucket on a local S3 server (moto), holding the tree's images under survey/."""
    pytest.importorskip("moto")
    from pyarrow import fs as pafs

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    keys = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        store = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http",
                                  allow_bucket_creation=True, region="us-east-1")  # fmt: skip
        for _ in range(100):  # the server is up within seconds
            try:
                store.create_dir("bucket")
                break
            except OSError:
                time.sleep(0.1)
        tmp, _ = tree
        for f in (tmp / "in").rglob("x*.png"):
            with store.open_output_stream(f"bucket/survey/{f.relative_to(tmp / 'in')}") as out:
                out.write(f.read_bytes())
        yield f"s3://bucket/survey?endpoint_override=127.0.0.1:{port}&scheme=http"
    finally:
        server.terminate()
        server.wait(10)
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_s3_uris_give_the_masks_of_the_local_files(cluster, tree, s3, capsys):
    tmp, ckpt = tree
    common = ["--checkpoint", str(ckpt), "--backend", "onnxruntime", "--no-progress"]
    assert main([str(tmp / "in" / "**" / "x*.png"), "--out", str(tmp / "s1"), *common]) == 0
    assert main([s3, "--out", str(tmp / "s2"), *common, "--ray", "local", "--actors", "2"]) == 0
    assert "ray: 6 images in" in capsys.readouterr().out
    assert _same_masks(tmp / "s1", tmp / "s2") == 6
    assert main([s3, "--out", str(tmp / "s2"), *common, "--ray", "local", "--resume"]) == 0
    assert "--resume: 6 of 6 inputs already written" in capsys.readouterr().out


def test_ray_refuses_videos_and_names_a_missing_ray(tree, monkeypatch):
    from segmnv3.inference import ray as on_ray

    tmp, ckpt = tree
    with pytest.raises(ValueError, match=r"--ray predicts images; .*clip.mp4 is a video"):
        on_ray.predict_on_ray([(tmp / "clip.mp4", {"video": tmp / "v.mp4"})], ckpt)
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    with pytest.raises(ValueError, match=r"Ray is not installed: pip install 'segmnv3\[ray\]'"):
        on_ray.predict_on_ray([], ckpt)
