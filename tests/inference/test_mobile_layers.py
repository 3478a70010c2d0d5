"""Naming the layer behind an export's problem: the deepest layer that fails alone, and
the ops an int8 graph keeps in float."""

import pytest
import torch
from torch import nn

from segmnv3.inference.mobile_layers import Bound, by_op, failing_layer, named_failure
from segmnv3.inference.pte import lower_executorch


class DataDependent(nn.Module):
    """A branch on a tensor's value: torch.export cannot trace it."""

    def forward(self, x, scale=1.0):
        return x * scale if x.sum() > 0 else -x


def _model():
    inner = nn.Sequential(nn.Conv2d(4, 4, 1), DataDependent(), nn.ReLU())
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Sequential(nn.ReLU(), inner))


def test_the_deepest_failing_layer_is_named():
    model, x = _model().eval(), torch.rand(1, 3, 8, 8)
    step = lambda m, a, k: torch.export.export(Bound(m, k), a)  # noqa: E731
    assert failing_layer(model, (x,), step) == "1.1.1 (DataDependent)"
    assert failing_layer(nn.Sequential(nn.Conv2d(3, 4, 1)), (x,), step) is None


def test_a_failed_lowering_names_its_layer():
    pytest.importorskip("executorch")
    model, x = _model().eval(), torch.rand(1, 3, 8, 8)
    with pytest.raises(Exception) as raised:
        lower_executorch(model, x)
    step = lambda m, a, k: lower_executorch(Bound(m, k), a)  # noqa: E731
    error = named_failure("lowering to ExecuTorch (fp32)", model, (x,), step, raised.value)
    message = str(error)
    assert message.startswith("lowering to ExecuTorch (fp32) failed in layer 1.1.1 "
                              "(DataDependent): ")  # fmt: skip
    assert "\n" not in message


def test_ops_are_summed_by_op():
    entries = ["hardswish (a (Hardswish))", "hardswish (b (Hardswish)) ×3", "mean (c (SE))"]
    assert by_op(entries) == "hardswish ×4, mean"
