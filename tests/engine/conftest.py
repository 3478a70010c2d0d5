import pytest
from helpers import make_checkpoint

from segmnv3.config import load_config
from segmnv3.data.samples import write_sample_data


@pytest.fixture(scope="session")
def cityscapes_tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs")
    return write_sample_data("cityscapes", out, 2, 3, (64, 128), seed=4)


@pytest.fixture(scope="session")
def cityscapes_ckpt(cityscapes_tree, tmp_path_factory):
    from segmnv3.data.cityscapes import CLASSES, PALETTE

    config = load_config(
        overrides=[
            "data.dataset=cityscapes",
            f"data.root={cityscapes_tree}",
            "data.num_workers=0",
            "model.backbone=mobilenet_v3_small",
        ]
    )
    path = tmp_path_factory.mktemp("ckpt") / "cs.pt"
    return make_checkpoint(path, config, CLASSES, PALETTE)
