import re

import pytest

from segmnv3.config import Config, config_from_dict, load_config, parse_overrides


def test_defaults_and_overrides():
    cfg = load_config(overrides=["train.epochs=3", "data.root=/data/x", "model.aux=true"])
    assert cfg.train.epochs == 3 and cfg.data.root == "/data/x" and cfg.model.aux is True
    assert isinstance(cfg, Config)


def test_unknown_keys_list_the_valid_ones(tmp_path):
    with pytest.raises(KeyError, match="epochz.*valid keys: epochs"):
        load_config(overrides=["train.epochz=3"])
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  hed: lraspp\n")
    with pytest.raises(KeyError, match=r"c.yaml.*'hed'.*valid keys: head"):
        load_config(path)


def test_types_are_checked():
    with pytest.raises(TypeError, match="train.epochs"):
        load_config(overrides=["train.epochs=many"])
    with pytest.raises(TypeError, match="model.reduced_tail"):
        load_config(overrides=["model.reduced_tail=1"])
    assert load_config(overrides=["train.lr=1"]).train.lr == 1.0  # int → float is fine


def test_option_dicts_set_whole_or_by_entry_and_round_trip(tmp_path):
    assert load_config(overrides=["data.options.seed=3"]).data.options == {"seed": 3}
    cfg = load_config(overrides=["data.options={size: [64, 64]}", "data.options.seed=3"])
    assert cfg.data.options == {"size": [64, 64], "seed": 3}
    cfg.save(tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert config_from_dict(cfg.to_dict()) == cfg


def test_shipped_configs_are_complete_and_strict():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert len(configs) == 9
    for path in configs:
        head, dataset = path.stem.split("_")
        cfg = load_config(path)
        assert cfg.model.head == head and cfg.data.dataset == dataset, path
        text = path.read_text()
        assert text.startswith("#") and "Recipe" in text or "demo" in text, path
    coco = load_config(Path(__file__).parents[1] / "configs" / "lraspp_coco.yaml")
    assert coco.data.options == {"categories": "voc", "year": 2017}  # not merged with defaults


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["train.epochs"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=-0.1", "train.lr=-0.1: must be a number > 0"),
        ("train.lr=0", "train.lr=0.0: must be a number > 0"),
        ("train.grad_clip=0", "train.grad_clip=0.0: must be null"),
        ("train.eval_interval=0", "train.eval_interval=0: must be an integer >= 1"),
        ("train.batch_size=-2", "train.batch_size=-2"),
        ("train.val_batch_size=0", "train.val_batch_size=0"),
        ("data.eval_resize=-5", "data.eval_resize=-5: must be null or an integer >= 1"),
        ("data.scale_range=[2, 1]", "data.scale_range"),
        ("train.class_weights=[.nan, 1]", "train.class_weights"),
        ("train.amp=fp8", "train.amp='fp8': must be none, fp16 or bf16"),
    ],
)
def test_values_that_make_no_sense_are_named(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_config(overrides=[override])


def test_exponent_floats_without_a_dot(tmp_path):
    # YAML 1.1 reads 1e-3 as the string "1e-3"; a float field takes it as the number.
    assert load_config(overrides=["train.lr=1e-3"]).train.lr == 0.001
    (tmp_path / "c.yaml").write_text("train:\n  weight_decay: 4e-5\n  grad_clip: 1e1\n")
    config = load_config(tmp_path / "c.yaml")
    assert config.train.weight_decay == 4e-5 and config.train.grad_clip == 10.0
    with pytest.raises(TypeError, match="train.lr: 'fast'"):
        load_config(overrides=["train.lr=fast"])


def test_a_yaml_list_and_option_typos_are_named(tmp_path, capsys):
    from segmnv3.cli import train as train_tool

    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="list.yaml: a config is a mapping of sections"):
        load_config(bad)
    out = f"out_dir={tmp_path / 'r'}"
    assert train_tool.main(["model.head_options.inter_chanels=64", out]) == 2
    err = capsys.readouterr().err
    assert "unknown option inter_chanels (model.head_options); valid options: inter_channels" in err
    assert train_tool.main(["data.options.num_sample=3", out]) == 2
    assert (
        "unknown option num_sample; valid options: kind_weights, num_samples"
        in capsys.readouterr().err
    )


def test_overrides_on_both_sides_of_a_flag(tmp_path, monkeypatch):
    from segmnv3.cli import train as train_tool

    seen = {}
    monkeypatch.setattr(train_tool, "train", lambda config, **kw: seen.setdefault("c", config))
    argv = ["train.epochs=1", "--name", "x", "train.lr=0.01", f"out_dir={tmp_path}"]
    assert train_tool.main(argv) == 0
    config = seen["c"]
    assert (config.train.epochs, config.name, config.train.lr) == (1, "x", 0.01)
