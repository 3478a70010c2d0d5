import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import make_checkpoint

from segmnv3.checkpoint import load_model
from segmnv3.cli.eval import run as run_eval
from segmnv3.config import load_config
from segmnv3.data.cityscapes import ID_TO_TRAIN_ID
from segmnv3.data.synthetic import CLASSES, PALETTE
from segmnv3.engine.builders import eval_dataset
from segmnv3.engine.evaluation import evaluate, predict_scores

ROOT = Path(__file__).resolve().parents[2]


def _official(cityscapes_root, results, tmp_path, monkeypatch):
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as ev

    if not hasattr(np, "in1d"):  # NumPy 2.4 removed it; the official script still calls it
        monkeypatch.setattr(np, "in1d", np.isin, raising=False)
    monkeypatch.setattr(sys, "argv", ["evalPixelLevelSemanticLabeling"])
    monkeypatch.setattr(ev.args, "cityscapesPath", str(cityscapes_root))
    gt = str(Path(cityscapes_root) / "gtFine" / "val" / "*" / "*_gtFine_labelIds.png")
    monkeypatch.setattr(ev.args, "groundTruthSearch", gt)
    monkeypatch.setattr(ev.args, "predictionPath", str(results))
    monkeypatch.setattr(ev.args, "predictionWalk", None)
    monkeypatch.setattr(ev.args, "exportFile", str(tmp_path / "official.json"))
    monkeypatch.setattr(ev.args, "quiet", True)
    ev.main()
    return json.loads((tmp_path / "official.json").read_text())


def test_equals_the_official_cityscapes_evaluator(
    cityscapes_tree, cityscapes_ckpt, tmp_path, monkeypatch
):
    results = tmp_path / "results"
    report = run_eval(cityscapes_ckpt, cityscapes_results=results, progress=False)
    written = sorted(p.name for p in results.glob("*.png"))
    assert written == [f"frankfurt_000000_00000{i}.png" for i in range(3)]
    pred = cv2.imread(str(results / written[0]), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(pred)) <= {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27,
                                    28, 31, 32, 33}  # fmt: skip
    official = _official(cityscapes_tree, results, tmp_path, monkeypatch)
    scored = 0
    for name, iou in zip(report["classes"], report["iou"], strict=True):
        theirs = official["classScores"][name]
        if np.isnan(theirs):
            assert np.isnan(iou), name
        else:
            assert iou == pytest.approx(theirs, abs=1e-6), name
            scored += 1
    assert scored >= 3  # the comparison covers several classes, not just NaNs
    assert report["mIoU"] == pytest.approx(official["averageScoreClasses"], abs=1e-6)


def test_outputs_json_pictures_and_raw_masks(cityscapes_ckpt, tmp_path, capsys):
    run_eval(
        cityscapes_ckpt,
        json_path=tmp_path / "m.json",
        save_pred=tmp_path / "pred",
        plot_confusion=tmp_path / "cm.png",
        progress=False,
    )
    out = capsys.readouterr().out
    assert "mIoU" in out and "road" in out and "pixel acc" in out
    text = (tmp_path / "m.json").read_text()
    report = json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert None in report["iou"] and "NaN" not in text  # absent classes: null, valid JSON
    for key in ("mIoU", "pixel_acc", "mean_acc", "fwIoU", "iou", "acc", "classes", "checkpoint",
                "dataset", "split", "mode", "images", "seconds"):  # fmt: skip
        assert key in report
    assert report["images"] == 3 and report["mode"] == "whole" and len(report["iou"]) == 19
    loaded = load_model(cityscapes_ckpt)
    ds = eval_dataset(loaded.config)
    image, _ = ds[0]
    with torch.no_grad():
        expected = loaded.model(image[None])["out"].argmax(1)[0].numpy()
    raw = cv2.imread(str(tmp_path / "pred" / "raw" / f"{ds.filename(0)}.png"), -1)
    assert np.array_equal(raw, expected)
    for kind in ("color", "overlay"):
        pic = cv2.imread(str(tmp_path / "pred" / kind / f"{ds.filename(0)}.png"))
        assert pic.shape == (64, 128, 3)
    assert cv2.imread(str(tmp_path / "cm.png")).shape[0] > 19 * 20


def test_resize_mode_scores_against_the_resized_label(cityscapes_ckpt, cityscapes_tree):
    report = run_eval(cityscapes_ckpt, resize=32, progress=False)
    assert report["mode"] == "resize" and report["resize"] == 32
    loaded = load_model(cityscapes_ckpt)
    ds = eval_dataset(loaded.config, resize=32)
    image, mask = ds[0]
    assert image.shape == (3, 32, 64)
    raw = cv2.imread(str(ds.masks[0]), cv2.IMREAD_UNCHANGED)
    assert torch.equal(mask, torch.as_tensor(ID_TO_TRAIN_ID[raw[::2, ::2]], dtype=torch.int64))
    with pytest.raises(ValueError, match="native resolution"):
        run_eval(cityscapes_ckpt, resize=32, cityscapes_results="x", progress=False)


def test_slide_and_tta(tmp_path):
    config = load_config(
        overrides=[
            "data.num_workers=0",
            "data.options={size: [64, 64]}",
            "data.val_options={num_samples: 2}",
        ]  # fmt: skip
    )
    ckpt = make_checkpoint(tmp_path / "s.pt", config, CLASSES, PALETTE)
    loaded = load_model(ckpt)
    x = eval_dataset(config)[0][0][None]
    whole = predict_scores(loaded.model, x)
    # One window covering the whole image is the whole-image prediction.
    assert torch.allclose(predict_scores(loaded.model, x, slide=(64, 32)), whole, atol=1e-5)
    slid = predict_scores(loaded.model, x, slide=(48, 16))
    assert slid.shape == whole.shape and not torch.allclose(slid, whole)
    tta = predict_scores(loaded.model, x, flip=True)
    with torch.no_grad():
        flipped = loaded.model(x.flip(-1))["out"].flip(-1)
    assert torch.allclose(tta, (whole.softmax(1) + flipped.softmax(1)) / 2, atol=1e-5)
    report = run_eval(ckpt, slide=(48, 16), progress=False)
    assert report["mode"] == "slide" and report["images"] == 2
    report = run_eval(ckpt, tta=True, scales=[0.5, 1.0], progress=False)
    assert report["tta"] == {"scales": [0.5, 1.0], "flip": True}


def test_evaluate_counts_every_pixel_once():
    class Oracle(torch.nn.Module):  # predicts the truth: mIoU 1
        def __init__(self, ds):
            super().__init__()
            self.ds, self.i = ds, 0

        def forward(self, x):
            _, mask = self.ds[self.i]
            self.i += 1
            logits = torch.nn.functional.one_hot(mask.clamp(max=4), 5).permute(2, 0, 1).float()
            return {"out": logits[None]}

    config = load_config(overrides=["data.options={size: [32, 32]}",
                                    "data.val_options={num_samples: 3}"])  # fmt: skip
    ds = eval_dataset(config)
    res = evaluate(Oracle(ds), ds, 5, num_workers=0, progress=False)
    assert res.metrics["mIoU"] == 1.0 and res.images == 3
    assert res.matrix.sum() == 3 * 32 * 32


@pytest.mark.parametrize("flags", [[]])
def test_torchrun_two_processes_equals_one(cityscapes_ckpt, tmp_path, flags):
    common = [str(ROOT / "tools" / "eval_seg.py"), "--checkpoint", str(cityscapes_ckpt),
              "--no-progress", "--device", "cpu", "--workers", "0", *flags]  # fmt: skip
    subprocess.run([sys.executable, *common, "--json", str(tmp_path / "one.json")], check=True,
                   capture_output=True)  # fmt: skip
    dist = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
            "--master_port=29533", *common, "--json", str(tmp_path / "two.json"),
            "--save-pred", str(tmp_path / "pred")]  # fmt: skip
    subprocess.run(dist, check=True, capture_output=True, env={"OMP_NUM_THREADS": "1",
                   **__import__("os").environ})  # fmt: skip
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["images"] == one["images"] == 3
    assert two["mIoU"] == pytest.approx(one["mIoU"], abs=1e-12)
    np.testing.assert_allclose(np.array(two["iou"], float), np.array(one["iou"], float), atol=1e-12)
    assert len(list((tmp_path / "pred" / "raw").glob("*.png"))) == 3


def test_torchvision_checkpoint_on_a_coco_tree(tmp_path):
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    from segmnv3.data.samples import write_sample_data

    root = write_sample_data("coco", tmp_path / "coco", 0, 3, (64, 96), seed=7)
    tv = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    report = run_eval(tmp_path / "tv.pth", data_root=str(root), resize=48, workers=0,
                      progress=False)  # fmt: skip
    assert report["dataset"] == "coco" and report["images"] == 3 and report["mode"] == "resize"
    assert report["classes"][15] == "person" and len(report["iou"]) == 21


def test_resize_zero_forces_native_resolution(tmp_path):
    val = "data.val_options={num_samples: 2, size: [48, 64]}"
    config = load_config(overrides=["data.eval_resize=32", "data.num_workers=0", val])
    ckpt = make_checkpoint(tmp_path / "r.pt", config, CLASSES, PALETTE)
    assert run_eval(ckpt, progress=False)["mode"] == "resize"
    report = run_eval(ckpt, resize=0, save_pred=tmp_path / "p", progress=False)
    assert report["mode"] == "whole" and report["resize"] is None
    raw = cv2.imread(str(next((tmp_path / "p" / "raw").glob("*.png"))), cv2.IMREAD_UNCHANGED)
    assert raw.shape == (48, 64)
