"""CellArgmax: a phone file's labels, as bilinear upsampling then argmax give them."""

import pytest
import torch
from torch.nn import functional as F

from segmnv3.inference.mobile_argmax import CellArgmax, cell_weights


def reference(logits: torch.Tensor, factor: int) -> torch.Tensor:
    up = F.interpolate(logits, scale_factor=factor, mode="bilinear", align_corners=False)
    return up.argmax(1)


@pytest.mark.parametrize("runtime", ["litert", "executorch"])
@pytest.mark.parametrize(("classes", "factor"), [(1, 8), (2, 8), (3, 8), (3, 16), (3, 4)])
def test_exact_with_up_to_three_classes_ties_included(classes, factor, runtime):
    """Integer logits: the interpolation is exact in both, and equal logits (ties) are
    common; ties go to the lower id as torch.argmax sends them."""
    torch.manual_seed(classes * factor)
    logits = torch.randint(-3, 4, (1, classes, 12, 20)).float()
    got = CellArgmax(classes, factor, runtime=runtime)(logits)
    assert got.shape == (1, 12 * factor, 20 * factor) and got.dtype == torch.uint8
    assert torch.equal(got.long(), reference(logits, factor))


def test_many_classes_agree_but_where_four_meet():
    """19 classes in regions (as a segmentation model's logits are): the labels equal the
    reference but in the few cells where four or more classes can win."""
    torch.manual_seed(0)
    seeds = torch.rand(60, 2) * torch.tensor([64.0, 128.0])  # regions: a Voronoi map
    yx = torch.stack(torch.meshgrid(torch.arange(64.0), torch.arange(128.0), indexing="ij"), -1)
    regions = (yx[:, :, None] - seeds).norm(dim=-1).argmin(-1) % 19
    logits = 6.0 * F.one_hot(regions, 19).permute(2, 0, 1)[None].float()
    logits = F.avg_pool2d(logits + torch.randn(1, 19, 64, 128), 5, 1, 2)
    got, want = CellArgmax(19, 8)(logits).long(), reference(logits, 8)
    assert (got == want).float().mean() >= 0.999
    noisy = F.avg_pool2d(torch.randn(1, 19, 64, 128), 9, 1, 4) * 30  # fragmented on purpose
    assert (CellArgmax(19, 8)(noisy).long() == reference(noisy, 8)).float().mean() >= 0.97


def test_int8_ids_and_bad_settings():
    logits = torch.randn(1, 19, 8, 16)
    as_int8 = CellArgmax(19, 8, torch.int8, "executorch")(logits)
    assert as_int8.dtype == torch.int8
    assert torch.equal(as_int8.long(), CellArgmax(19, 8)(logits).long())
    with pytest.raises(ValueError, match="150 classes do not fit int8"):
        CellArgmax(150, 8, torch.int8)
    with pytest.raises(ValueError, match="factor 7 must be even"):
        CellArgmax(19, 7)
    with pytest.raises(ValueError, match="one image, not a batch of 2"):
        CellArgmax(19, 8)(torch.randn(2, 19, 8, 16))


def test_cell_weights_are_the_bilinear_ones():
    """Each pixel's four weights sum to 1 and reproduce F.interpolate on one cell."""
    w = cell_weights(8)
    assert w.shape == (4, 64) and torch.allclose(w.sum(0), torch.ones(64))
    corners = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    up = F.interpolate(corners[None, None], scale_factor=8, mode="bilinear",
                       align_corners=False)[0, 0, 4:12, 4:12]  # fmt: skip
    assert torch.allclose((corners.reshape(1, 4) @ w).reshape(8, 8), up)
