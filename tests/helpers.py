"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

import torch

from segmnv3.checkpoint import model_args, save_checkpoint
from segmnv3.models import build_model


def make_checkpoint(path, config, classes, palette, seed=0):
    """A segmnv3 checkpoint of a randomly initialised model whose predictions vary."""
    torch.manual_seed(seed)
    model = build_model(**model_args(config, len(classes)))
    for m in model.modules():  # random BN statistics: varied, class-mixing predictions
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    state = {
        "model": model.state_dict(),
        "config": config.to_dict(),
        "model_args": model_args(config, len(classes)),
        "classes": list(classes),
        "palette": [list(c) for c in palette],
    }
    save_checkpoint(path, state)
    return path


def phone_checkpoint(tmp):
    """The phone-export tests' labelled folder data (``tmp/data``) and small checkpoint."""
    from segmnv3.config import load_config
    from segmnv3.data.samples import write_sample_data
    from segmnv3.data.synthetic import CLASSES, PALETTE

    write_sample_data("folder", tmp / "data", 0, 6, (48, 96), seed=4)
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    return make_checkpoint(tmp / "m.pt", config, CLASSES, PALETTE)
