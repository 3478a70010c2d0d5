"""Each loss against a direct computation on small tensors; all ignore 255 and take class
weights."""

import pytest
import torch
from torch.nn import functional as F

from segmnv3.engine.losses import (
    LOSSES,
    build_loss,
    cross_entropy,
    dice_loss,
    focal_loss,
    lovasz_softmax,
    ohem_cross_entropy,
)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 7, generator=g)
    target = torch.randint(0, 4, (2, 6, 7), generator=g)
    target[0, :2] = 255  # ignored rows
    return logits, target


def test_cross_entropy_with_weights_equals_pytorch(batch):
    logits, target = batch
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    expected = F.cross_entropy(logits, target, weight=w, ignore_index=255)
    assert cross_entropy(logits, target, w).item() == pytest.approx(expected.item(), rel=1e-6)


def test_focal_with_gamma_0_is_cross_entropy_and_down_weights_easy_pixels(batch):
    logits, target = batch
    ce = cross_entropy(logits, target)
    assert focal_loss(logits, target, gamma=0.0).item() == pytest.approx(ce.item(), rel=1e-6)
    per = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    p = torch.exp(-per)
    valid = target != 255
    direct = ((1 - p) ** 2 * per)[valid].mean()
    assert focal_loss(logits, target, gamma=2.0).item() == pytest.approx(direct.item(), rel=1e-5)


def test_ohem_keeping_every_pixel_is_cross_entropy_and_keeps_the_hardest(batch):
    logits, target = batch
    ce = cross_entropy(logits, target)
    everything = ohem_cross_entropy(logits, target, thresh=1.0, min_kept=10**6)
    assert everything.item() == pytest.approx(ce.item(), rel=1e-6)
    per = F.cross_entropy(logits, target, ignore_index=255, reduction="none")[target != 255]
    hardest = per.sort(descending=True).values[:5].mean()
    got = ohem_cross_entropy(logits, target, thresh=0.0, min_kept=5)
    assert got.item() == pytest.approx(hardest.item(), rel=1e-5)


def test_dice_of_a_perfect_prediction_is_0_and_matches_the_formula(batch):
    _, target = batch
    perfect = F.one_hot(target.clamp(max=3), 4).permute(0, 3, 1, 2).float() * 100
    assert dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    logits, _ = batch
    valid = (target != 255)[:, None]
    probs = logits.softmax(1) * valid
    onehot = F.one_hot(target.clamp(max=3), 4).permute(0, 3, 1, 2).float() * valid
    inter, total = (probs * onehot).sum((0, 2, 3)), (probs + onehot).sum((0, 2, 3))
    expected = (1 - 2 * inter / total).mean()
    assert dice_loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_lovasz_is_0_for_a_perfect_prediction_and_positive_otherwise(batch):
    logits, target = batch
    perfect = F.one_hot(target.clamp(max=3), 4).permute(0, 3, 1, 2).float() * 100
    assert lovasz_softmax(perfect, target).item() == pytest.approx(0.0, abs=1e-5)
    assert 0 < lovasz_softmax(logits, target).item() <= 1
    # Class 1 predicted everywhere on a half-class-1 row: class 1's IoU is 1/2, class 0's 0,
    # and the Lovász extension at a 0/1 prediction is exactly 1 − IoU per class.
    one = torch.zeros(1, 2, 1, 4)
    one[0, 1] = 10.0  # class 1 predicted with p ≈ 1 everywhere
    t = torch.tensor([[[1, 1, 0, 0]]])
    assert lovasz_softmax(one, t).item() == pytest.approx(0.5 * (0.5 + 1.0), abs=1e-3)


def test_a_weighted_list_sums_its_terms_and_ignores_255(batch):
    logits, target = batch
    combo = build_loss([{"name": "ce", "weight": 1}, {"name": "dice", "weight": 0.5}])
    expected = cross_entropy(logits, target) + 0.5 * dice_loss(logits, target)
    assert combo(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    changed = logits.clone()
    changed[0, :, :2] = torch.randn(4, 2, 7)  # only ignored pixels change
    for name in LOSSES:
        fn = build_loss(name)
        assert fn(changed, target).item() == pytest.approx(fn(logits, target).item(), rel=1e-6)


def test_bad_loss_specs_list_the_valid_ones():
    with pytest.raises(ValueError, match="train.loss: unknown loss 'tversky'; choose one of ce, "
                       "ohem, dice, focal, lovasz"):  # fmt: skip
        build_loss("tversky")
    with pytest.raises(ValueError, match=r"train.loss\[0\]: unknown option alpha for 'focal'; "
                       "valid: gamma"):  # fmt: skip
        build_loss([{"name": "focal", "alpha": 0.25}])
    with pytest.raises(ValueError, match=r"train.loss\[1\]: weight -1"):
        build_loss([{"name": "ce"}, {"name": "dice", "weight": -1}])


def test_train_tool_names_an_unknown_loss(tmp_path, capsys):
    from segmnv3.cli import train as train_tool

    assert train_tool.main(["train.loss=tversky", f"out_dir={tmp_path}"]) == 2
    assert "unknown loss 'tversky'; choose one of ce, ohem" in capsys.readouterr().err
