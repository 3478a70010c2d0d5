import pytest
import torch
from torch.nn import functional as F

from segmnv3 import postprocess
from segmnv3.postprocess import upsample_argmax

SHAPES = [
    ((2, 5, 8, 16), (64, 128)),  # stride 8, a batch
    ((1, 21, 13, 17), (97, 131)),  # odd sizes, non-integer scale
    ((1, 3, 20, 30), (10, 15)),  # downsampling
    ((1, 4, 9, 9), (9, 9)),  # same size
    ((1, 2, 1, 1), (5, 7)),  # a single source pixel
    ((1, 3, 5, 1), (40, 3)),  # a single source column
]


def _reference(logits, size):
    up = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
    top2 = up.topk(2, dim=1).values
    return up.argmax(1), top2[:, 0] - top2[:, 1]


def _smooth(shape, seed):
    """Logits like a trained model's: regions of one class with boundaries between them."""
    g = torch.Generator().manual_seed(seed)
    n, k, h, w = shape
    coarse = torch.randn(n, k, max(1, h // 4), max(1, w // 4), generator=g) * 4
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("regime", ["auto", "sparse", "dense"])
@pytest.mark.parametrize("kind", ["noise", "smooth"])
@pytest.mark.parametrize("shape, size", SHAPES)
def test_equals_interpolate_then_argmax(shape, size, kind, regime, monkeypatch):
    if regime != "auto":  # force one way of computing the unsure cells
        monkeypatch.setattr(postprocess, "DENSE_ABOVE", 1.0 if regime == "sparse" else 0.0)
    logits = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    if kind == "smooth":
        logits = _smooth(shape, 1)
    ids = upsample_argmax(logits, size)
    ref, margin = _reference(logits, size)
    assert ids.shape == (shape[0], *size) and ids.dtype == torch.uint8
    clear = margin > 1e-5  # summation order may differ in the last bit: only near-ties
    assert torch.equal(ids.long()[clear], ref[clear])
    assert clear.float().mean() > 0.999


@pytest.mark.parametrize("regime", [1.0, 0.0])
def test_uint8_logits_and_ties(regime, monkeypatch):
    # Quantized logits: many exact ties, which go to the lower class id as in torch.argmax.
    monkeypatch.setattr(postprocess, "DENSE_ABOVE", regime)
    g = torch.Generator().manual_seed(2)
    q = torch.randint(0, 4, (2, 6, 16, 32), generator=g, dtype=torch.uint8)
    ids = upsample_argmax(q, (128, 256))
    ref = F.interpolate(q.float(), size=(128, 256), mode="bilinear", align_corners=False)
    assert torch.equal(ids.long(), ref.argmax(1))


@pytest.mark.parametrize("regime", [1.0, 0.0])
def test_many_classes_give_int32(regime, monkeypatch):
    monkeypatch.setattr(postprocess, "DENSE_ABOVE", regime)
    logits = _smooth((1, 300, 8, 12), 3)
    ids = upsample_argmax(logits, (64, 96))
    assert ids.dtype == torch.int32
    ref, margin = _reference(logits, (64, 96))
    assert torch.equal(ids.long()[margin > 1e-5], ref[margin > 1e-5])


def test_uniform_logits_take_the_fast_path(monkeypatch):
    # One class everywhere: no cell needs interpolating, so the dense path is never called.
    monkeypatch.setattr(postprocess, "_dense", None)
    logits = torch.zeros(1, 4, 8, 8)
    logits[:, 2] = 1
    assert torch.equal(
        upsample_argmax(logits, (64, 64)), torch.full((1, 64, 64), 2, dtype=torch.uint8)
    )


def test_interpolated_fraction():
    logits = torch.zeros(1, 2, 4, 4)
    logits[:, 1, :, 2:] = 1  # class 1 in the right half: only the middle column of cells mixes
    assert postprocess.interpolated_fraction(logits) == pytest.approx(4 / 16)


def test_a_class_that_wins_no_corner_can_win_between_them(monkeypatch):
    """Class 2 is second at both source pixels, yet wins midway: the sparse path must keep
    every class whose largest corner logit reaches the bound, not only the corners' winners."""
    monkeypatch.setattr(postprocess, "DENSE_ABOVE", 1.0)
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.9]]).view(1, 3, 1, 2)
    ids = upsample_argmax(logits, (1, 8))
    ref = F.interpolate(logits, size=(1, 8), mode="bilinear", align_corners=False).argmax(1)
    assert torch.equal(ids.long(), ref) and 2 in ids.tolist()[0][0]


def test_many_upsampling_scales_match_interpolate():
    """The base labels come from OpenCV's nearest neighbour, which must pick one of each
    pixel's first sources at every scale (integer or not) up to 8×, width and height apart."""
    g = torch.Generator().manual_seed(5)
    for _ in range(40):
        h, w = (int(v) for v in torch.randint(1, 24, (2,), generator=g))
        out_h = h + int(torch.randint(0, 7 * h + 1, (1,), generator=g))
        out_w = w + int(torch.randint(0, 7 * w + 1, (1,), generator=g))
        logits = _smooth((1, 4, h, w), int(torch.randint(0, 1000, (1,), generator=g)))
        ids = upsample_argmax(logits, (out_h, out_w))
        ref, margin = _reference(logits, (out_h, out_w))
        clear = margin > 1e-5
        assert torch.equal(ids.long()[clear], ref[clear]), (h, w, out_h, out_w)
