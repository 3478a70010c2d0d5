import numpy as np
import pytest
import torch
from helpers import make_checkpoint
from PIL import Image
from torchvision.models.segmentation import lraspp_mobilenet_v3_large

from segmnv3 import Segmenter
from segmnv3.checkpoint import load_model
from segmnv3.config import load_config
from segmnv3.data.synthetic import CLASSES, PALETTE
from segmnv3.inference import fuse_batchnorm
from segmnv3.io import write_png


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    return make_checkpoint(tmp_path_factory.mktemp("seg") / "m.pt", config, CLASSES, PALETTE)


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _reference(ckpt, image):
    model = load_model(ckpt).model
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    x = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std
    with torch.no_grad():
        logits = model(x[None])["out"][0]
    return logits


def test_torch_backend_equals_the_model_argmax(ckpt):
    seg = Segmenter.from_checkpoint(ckpt, backend="torch", precision="fp32")  # vs fp32 below
    image = _image(97, 131)
    logits = _reference(ckpt, image)
    mask = seg.predict(image)
    assert mask.shape == (97, 131) and mask.dtype == np.uint8
    top2 = logits.topk(2, dim=0).values
    clear = (top2[0] - top2[1]) > 1e-4  # BN folding changes float rounding, not clear winners
    assert np.array_equal(mask[clear.numpy()], logits.argmax(0).numpy()[clear.numpy()])
    assert clear.float().mean() > 0.99
    proba = seg.predict_proba(image)
    assert proba.shape == (5, 97, 131)
    np.testing.assert_allclose(proba.sum(0), 1, atol=1e-5)
    np.testing.assert_allclose(proba, logits.softmax(0).numpy(), atol=1e-4)


def test_inputs_of_every_kind(ckpt, tmp_path):
    seg = Segmenter.from_checkpoint(ckpt)
    rgb = _image(40, 50)
    write_png(tmp_path / "a.png", rgb)
    grey, rgba = rgb[..., 0], np.dstack([rgb, np.full((40, 50), 255, np.uint8)])
    ref = seg.predict(rgb)
    assert np.array_equal(seg.predict(str(tmp_path / "a.png")), ref)
    assert np.array_equal(seg.predict(tmp_path / "a.png"), ref)
    assert np.array_equal(seg.predict(Image.fromarray(rgb)), ref)
    assert np.array_equal(seg.predict(rgba), ref)
    assert np.array_equal(seg.predict(grey), seg.predict(np.dstack([grey] * 3)))
    masks = seg.predict([rgb, _image(33, 65, 1), rgb, tmp_path / "a.png"])  # batched by size
    assert [m.shape for m in masks] == [(40, 50), (33, 65), (40, 50), (40, 50)]
    assert all(np.array_equal(masks[i], ref) for i in (0, 2, 3))
    assert np.array_equal(masks[1], seg.predict(_image(33, 65, 1)))
    colour, over = seg.colorize(ref), seg.overlay(rgb, ref)
    assert colour.shape == over.shape == (40, 50, 3) and colour.dtype == np.uint8
    assert tuple(colour[ref == 1][0]) == PALETTE[1] if (ref == 1).any() else True


def test_bad_inputs_are_named(ckpt, tmp_path):
    seg = Segmenter.from_checkpoint(ckpt)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        seg.predict(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        seg.predict(str(tmp_path / "bad.png"))
    with pytest.raises(TypeError, match="image 1: expected uint8"):
        seg.predict([_image(8, 8), np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match=r"shape \(8, 8, 2\)"):
        seg.predict(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(ValueError, match="backend"):
        Segmenter.from_checkpoint(ckpt, backend="tensorrt")


def test_resize_from_config_returns_masks_at_input_size(tmp_path):
    config = load_config(overrides=["data.eval_resize=32"])
    path = make_checkpoint(tmp_path / "r.pt", config, CLASSES, PALETTE)
    seg = Segmenter.from_checkpoint(path)
    assert seg.predict(_image(64, 96)).shape == (64, 96)
    assert seg.predict_proba(_image(64, 96)).shape == (5, 64, 96)


def test_onnxruntime_backend_matches_torch(ckpt, tmp_path):
    torch_seg = Segmenter.from_checkpoint(ckpt, backend="torch", precision="fp32")
    ort_seg = Segmenter.from_checkpoint(ckpt, backend="onnxruntime", precision="fp32")
    for size in [(32, 32), (97, 131)]:
        image = _image(*size, seed=3)
        a, b = torch_seg.predict(image), ort_seg.predict(image)
        assert (a == b).mean() >= 0.999
        np.testing.assert_allclose(ort_seg.predict_proba(image), torch_seg.predict_proba(image),
                                   atol=1e-4)  # fmt: skip


def test_torch_runs_on_one_thread_beside_another_runtime(ckpt, monkeypatch):
    # torch's pre- and post-processing on one thread while ONNX Runtime has the cores; the
    # torch backend keeps its threads; the user's setting is back after each call
    import segmnv3.inference.segmenter as segmenter_module

    seen = []
    real_prepare = Segmenter.prepare
    monkeypatch.setattr(Segmenter, "prepare",
                        lambda self, rgb: seen.append(torch.get_num_threads())
                        or real_prepare(self, rgb))  # fmt: skip
    real_upsample = segmenter_module.upsample_argmax
    monkeypatch.setattr(segmenter_module, "upsample_argmax",
                        lambda low, size: seen.append(torch.get_num_threads())
                        or real_upsample(low, size))  # fmt: skip
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ort = Segmenter.from_checkpoint(ckpt, backend="onnxruntime", precision="fp32")
        eager = Segmenter.from_checkpoint(ckpt, backend="torch", precision="fp32")
        image = _image(40, 56)
        assert ort.predict(image).shape == (40, 56) and torch.get_num_threads() == 2
        assert ort.labels(ort.logits(image), (40, 56)).shape == (40, 56)
        assert seen == [1, 1, 1, 1] and torch.get_num_threads() == 2
        seen.clear()
        assert eager.predict(image).shape == (40, 56) and seen == [2, 2]
    finally:
        torch.set_num_threads(before)


def test_torchvision_state_dict(tmp_path):
    tv = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None).eval()
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    seg = Segmenter.from_checkpoint(tmp_path / "tv.pth")
    assert seg.classes[15] == "person" and seg.num_classes == 21
    assert seg.predict(_image(64, 64)).shape == (64, 64)


def test_fuse_batchnorm_keeps_outputs():
    from segmnv3.models import build_model

    model = build_model("deeplabv3", 3, aux=True).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
    fused = fuse_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x)["out"], fused(x)["out"], atol=1e-4)


@pytest.mark.parametrize("resize", [None, 40])
def test_preprocessing_equals_evaluation(resize):
    """Segmenter.prepare and evaluation's eval_preset give the same input tensor."""
    from segmnv3.data import eval_preset

    image = _image(61, 83, seed=3)
    mask = np.zeros(image.shape[:2], np.uint8)
    expected, _ = eval_preset(resize=resize)(image, mask)
    seg = Segmenter(None, CLASSES, PALETTE, resize=resize)
    ours = torch.from_numpy(seg.prepare(image))
    assert ours.shape == expected.shape
    if resize:
        assert min(ours.shape[-2:]) == resize
    assert torch.allclose(ours, expected, atol=1e-5)


def test_one_orientation_rule_for_paths_and_pil_images(ckpt, tmp_path):
    """Paths and PIL images are turned upright by their EXIF orientation; arrays are not."""
    seg = Segmenter.from_checkpoint(ckpt)
    stored = _image(24, 40, seed=5)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise
    Image.fromarray(stored).save(tmp_path / "r.png", exif=exif.tobytes())
    by_path = seg.predict(tmp_path / "r.png")
    with Image.open(tmp_path / "r.png") as pil:
        by_pil = seg.predict(pil)
    upright = np.ascontiguousarray(np.rot90(stored, k=-1))
    assert by_path.shape == by_pil.shape == (40, 24)
    assert np.array_equal(by_path, by_pil) and np.array_equal(by_path, seg.predict(upright))
    assert seg.predict(stored).shape == (24, 40)  # an array is taken as given


def test_sixteen_bit_images_by_path_and_pil_agree(tmp_path):
    grey16 = (np.random.default_rng(2).integers(0, 65536, (30, 36))).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as pil:
        assert pil.mode.startswith("I")
        from segmnv3.inference import to_rgb

        rgb = to_rgb(pil)
    assert rgb.dtype == np.uint8 and 0 < rgb.mean() < 255  # not clipped to white
    assert np.abs(rgb.astype(int) - to_rgb(tmp_path / "g16.png")).max() <= 1
