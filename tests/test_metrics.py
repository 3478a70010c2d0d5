import math

import numpy as np
import pytest
import torch

from segmnv3.metrics import ConfusionMatrix


def _reference(pred, target, n, ignore=255):
    keep = (target != ignore) & (target >= 0) & (target < n)
    mat = np.zeros((n, n), np.int64)
    for t, p in zip(target[keep], pred[keep], strict=True):
        mat[t, p] += 1
    tp = np.diag(mat).astype(float)
    gt, pr = mat.sum(1), mat.sum(0)
    union = gt + pr - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    freq = gt / gt.sum()
    return mat, {
        "mIoU": np.nanmean(iou),
        "pixel_acc": tp.sum() / mat.sum(),
        "mean_acc": np.nanmean(acc),
        "fwIoU": np.nansum(freq * np.where(gt > 0, iou, 0)),
        "iou": iou,
        "acc": acc,
    }


def test_matches_numpy_reference_with_ignore_absent_and_unlabelled_classes():
    rng = np.random.default_rng(0)
    n = 6
    target = rng.integers(0, 4, size=(3, 40, 50))  # classes 4, 5 never labelled
    target[rng.random(target.shape) < 0.2] = 255
    target[0, 0, :5] = 9  # out of range: skipped
    pred = rng.integers(0, 5, size=target.shape)  # class 4 predicted, never labelled; 5 absent
    cm = ConfusionMatrix(n)
    for i in range(3):  # several updates sum into one matrix
        cm.update(torch.as_tensor(pred[i]), torch.as_tensor(target[i]))
    mat, ref = _reference(pred.ravel(), target.ravel(), n)
    assert np.array_equal(cm.mat.numpy(), mat)
    got = cm.compute()
    for key in ("mIoU", "pixel_acc", "mean_acc", "fwIoU"):
        assert got[key] == pytest.approx(ref[key], abs=1e-12)
        assert 0 <= got[key] <= 1
    np.testing.assert_allclose(got["iou"], ref["iou"], atol=1e-12)
    np.testing.assert_allclose(got["acc"], ref["acc"], atol=1e-12)
    assert got["iou"][4] == 0.0  # predicted but never labelled
    assert math.isnan(got["iou"][5]) and math.isnan(got["acc"][5])  # absent everywhere
    assert isinstance(got["mIoU"], float) and isinstance(got["iou"], list)


def test_perfect_and_known_values():
    cm = ConfusionMatrix(3)
    target = torch.tensor([0, 0, 1, 1, 2, 255])
    cm.update(torch.tensor([0, 1, 1, 1, 2, 0]), target)
    m = cm.compute()
    assert m["iou"] == pytest.approx([0.5, 2 / 3, 1.0])
    assert m["pixel_acc"] == pytest.approx(4 / 5)
    assert m["acc"] == pytest.approx([0.5, 1.0, 1.0])


def test_errors():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.zeros(2, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="class ids"):
        cm.update(torch.tensor([5]), torch.tensor([1]))
