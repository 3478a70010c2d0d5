"""predict_seg.py --ray and segment_dataset on a local Ray cluster (2 CPUs, stopped at the
end): the same masks, bit for bit and by the same names, as the one-process tool."""

import cv2
import pytest
import ray
from helpers import make_checkpoint

from segmnv3 import Segmenter
from segmnv3.cli.predict import main
from segmnv3.config import load_config
from segmnv3.data.synthetic import CLASSES, PALETTE, SyntheticSegmentation


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


def test_ray_refuses_videos_and_names_a_missing_ray(tree, monkeypatch):
    from segmnv3.inference import ray as on_ray

    tmp, ckpt = tree
    with pytest.raises(ValueError, match=r"--ray predicts images; .*clip.mp4 is a video"):
        on_ray.predict_on_ray([(tmp / "clip.mp4", {"video": tmp / "v.mp4"})], ckpt)
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    with pytest.raises(ValueError, match=r"Ray is not installed: pip install 'segmnv3\[ray\]'"):
        on_ray.predict_on_ray([], ckpt)
