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
