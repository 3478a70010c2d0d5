"""Fine-tuning from a trained model: what fits loads, other classes start fresh with the rows
of matching names carried over, the backbone's own learning rate and freezing."""

import pytest
import torch
from helpers import make_checkpoint

from segmnv3.checkpoint import load_checkpoint
from segmnv3.config import load_config
from segmnv3.data.samples import write_sample_data
from segmnv3.data.synthetic import CLASSES, PALETTE
from segmnv3.engine.trainer import train

TINY = ["data.num_workers=0", "train.batch_size=4", "train.epochs=1", "train.num_vis=0",
        "model.backbone=mobilenet_v3_small", "data.crop_size=[64,64]"]  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    return make_checkpoint(tmp_path_factory.mktemp("src") / "best.pt", config, CLASSES, PALETTE)


def _folder(tmp_path, names):
    root = write_sample_data("folder", tmp_path / "data", 8, 2, (64, 64))
    (root / "classes.yaml").write_text("classes: [" + ", ".join(names) + "]\n")
    return root


def test_other_classes_start_fresh_and_matching_rows_carry_over(tmp_path, source, capsys):
    names = ["background", "disc", "box", "pyramid", "comet"]  # 3 of 5 names shared
    root = _folder(tmp_path, names)
    config = load_config(overrides=[*TINY, f"out_dir={tmp_path}", "name=ft", "data.dataset=folder",
                                    f"data.root={root}", f"model.weights={source}",
                                    "train.freeze_backbone_epochs=1"])  # fmt: skip
    train(config, progress=False)
    out = capsys.readouterr().out
    assert "fine-tuning from run " in out and "tensors loaded; fresh: classifier." in out
    assert "(5 classes -> 5); rows carried over for background, box, disc" in out
    src = load_checkpoint(source)["model"]
    new = load_checkpoint(tmp_path / "ft" / "last.pt")["model"]
    # frozen for its one epoch: the backbone is exactly the source's
    backbone = [k for k in new if k.startswith("backbone.")]
    assert backbone and all(torch.equal(new[k], src[k]) for k in backbone)
    head = "classifier.low_classifier.weight"
    assert new[head].shape == src[head].shape


def test_carried_rows_are_the_source_rows_before_training(source):
    from segmnv3.engine.finetune import load_for_finetuning
    from segmnv3.models import build_model

    model = build_model("lraspp", 3, backbone="mobilenet_v3_small")
    report = load_for_finetuning(model, str(source), ["box", "background", "new"], log=print)
    src = load_checkpoint(source)["model"]
    key = "classifier.high_classifier.weight"
    got = model.state_dict()[key]
    assert torch.equal(got[0], src[key][CLASSES.index("box")])
    assert torch.equal(got[1], src[key][CLASSES.index("background")])
    assert report["carried"] == ["background", "box"] and key in report["fresh"]
    assert report["loaded"] > 0.9 * report["total"]


def test_weights_of_another_architecture_are_refused(source):
    from segmnv3.engine.finetune import load_for_finetuning
    from segmnv3.models import build_model

    model = build_model("deeplabv3", 5)  # Large backbone: nothing of the Small one fits
    with pytest.raises(ValueError, match=r"only \d+ of \d+ tensors fit this model"):
        load_for_finetuning(model, str(source), CLASSES, log=print)


def test_backbone_lr_mult_gives_the_backbone_its_own_rate():
    from segmnv3.config import TrainConfig
    from segmnv3.engine.optim import build_optimizer, build_scheduler
    from segmnv3.models import build_model

    model = build_model("lraspp", 3, backbone="mobilenet_v3_small")
    cfg = TrainConfig(lr=0.1, backbone_lr_mult=0.1, warmup_iters=0)
    opt = build_optimizer(model, cfg)
    backbone, rest = opt.param_groups
    assert backbone["lr"] == pytest.approx(0.01) and rest["lr"] == pytest.approx(0.1)
    assert {id(p) for p in backbone["params"]} == {id(p) for p in model.backbone.parameters()}
    sched = build_scheduler(opt, cfg, total_iters=10, frozen_iters=3)
    rates = []
    for _ in range(5):
        rates.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert [r[0] for r in rates[:3]] == [0.0, 0.0, 0.0] and rates[3][0] > 0
    assert all(r[1] > 0 for r in rates)
