import hashlib
import io
import json

import numpy as np
import pytest
import torch
from helpers import make_checkpoint
from torchvision.models import MobileNet_V3_Large_Weights, MobileNet_V3_Small_Weights
from torchvision.models.segmentation import (
    DeepLabV3_MobileNet_V3_Large_Weights,
    LRASPP_MobileNet_V3_Large_Weights,
    lraspp_mobilenet_v3_large,
)

import segmnv3
from segmnv3 import Segmenter, downloads, hub
from segmnv3.cli import export, weights
from segmnv3.config import load_config
from segmnv3.data.synthetic import CLASSES, PALETTE

TORCHVISION = {
    "lraspp_mobilenet_v3_large.coco_with_voc_labels_v1":
        LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1,
    "deeplabv3_mobilenet_v3_large.coco_with_voc_labels_v1":
        DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1,
    "mobilenet_v3_large.imagenet1k_v1": MobileNet_V3_Large_Weights.IMAGENET1K_V1,
    "mobilenet_v3_large.imagenet1k_v2": MobileNet_V3_Large_Weights.IMAGENET1K_V2,
    "mobilenet_v3_small.imagenet1k_v1": MobileNet_V3_Small_Weights.IMAGENET1K_V1,
}  # fmt: skip


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """An empty torch.hub cache per test, online unless a test says otherwise."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(hub.OFFLINE_ENV, raising=False)
    saved = dict(hub.WEIGHTS)
    yield tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.WEIGHTS.clear()
    hub.WEIGHTS.update(saved)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_registry_agrees_with_torchvision(name):
    entry, tv = hub.get_weights(name), TORCHVISION[name]
    assert entry.url == tv.url and entry.num_params == tv.meta["num_params"]
    assert tv.url.endswith(f"-{entry.sha256_prefix}.pth")
    if entry.task == "segmentation":
        metrics = tv.meta["_metrics"]["COCO-val2017-VOC-labels"]
        assert entry.metrics["mIoU"] == metrics["miou"]
        assert entry.metrics["pixel_acc"] == metrics["pixel_acc"]
        assert len(entry.classes) == len(tv.meta["categories"]) == 21
        assert entry.classes[1:] == tuple(tv.meta["categories"][1:])
        assert entry.resize == tv.transforms().resize_size[0] == 520
    else:
        assert entry.metrics["acc@1"] == tv.meta["_metrics"]["ImageNet-1K"]["acc@1"]


def _served(tmp_path, name="team_lraspp"):
    """A random-weight torchvision LR-ASPP file named with its real hash prefix, behind a
    file:// URL, registered as ``name``."""
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(lraspp_mobilenet_v3_large(weights=None, weights_backbone=None).state_dict(), buffer)
    data = buffer.getvalue()
    path = tmp_path / "server" / f"{name}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    card = hub.get_weights("lraspp_mobilenet_v3_large.coco_with_voc_labels_v1").card()
    card.update(name=name, url=path.as_uri(), num_params=3_221_538)
    return hub.register_weights(card), data


def test_download_once_then_cache_hits_fetch_nothing(tmp_path, cache, monkeypatch):
    entry, data = _served(tmp_path)
    path = hub.weights_file(entry.name, progress=False)
    assert path == cache / entry.filename and path.read_bytes() == data
    assert hub.list_weights()[-1]["cached"] is True
    monkeypatch.setattr(downloads, "_fetch", lambda *a: pytest.fail("a cache hit must not fetch"))
    assert hub.weights_file(entry.name) == path
    seg = Segmenter.from_pretrained(entry.name, backend="torch", precision="fp32")
    mask = seg.predict(np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8))
    assert mask.shape == (60, 80) and seg.resize == 520 and seg.classes[15] == "person"


def test_a_file_with_the_wrong_hash_is_refused_and_never_loaded(tmp_path, cache, monkeypatch):
    entry, data = _served(tmp_path)
    cache.mkdir(parents=True)
    (cache / entry.filename).write_bytes(data[:-10] + b"0123456789")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("must not be loaded"))
    with pytest.raises(
        ValueError, match=f"{entry.filename}: SHA-256 .* expected {entry.sha256_prefix}"
    ):
        segmnv3.build_model(weights=entry.name)


def test_offline_with_an_empty_cache_says_what_to_do(tmp_path, cache, monkeypatch):
    entry, _ = _served(tmp_path)
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")
    monkeypatch.setattr(downloads, "_fetch", lambda *a: pytest.fail("offline must not fetch"))
    with pytest.raises(FileNotFoundError) as info:
        hub.weights_file(entry.name)
    message = str(info.value)
    assert entry.url in message and str(cache / entry.filename) in message
    assert "SEGMNV3_OFFLINE=1" in message


@pytest.mark.parametrize("failure", [ConnectionResetError, KeyboardInterrupt])
def test_an_interrupted_download_leaves_nothing(tmp_path, cache, monkeypatch, failure):
    entry, data = _served(tmp_path)

    def half_then_fail(url, out, name, timeout, progress, limit):
        out.write(data[: len(data) // 2])
        raise failure("connection lost")

    monkeypatch.setattr(downloads, "_fetch", half_then_fail)
    monkeypatch.setattr(downloads.time, "sleep", lambda s: None)
    with pytest.raises(OSError if failure is ConnectionResetError else KeyboardInterrupt) as info:
        hub.weights_file(entry.name, progress=False)
    if failure is ConnectionResetError:
        assert entry.url in str(info.value) and "place the file by hand" in str(info.value)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_backbone_names_and_the_imagenet_alias(tmp_path, cache):
    torch.manual_seed(1)
    state = segmnv3.build_model("lraspp", 3, reduced_tail=False).backbone.state_dict()
    buffer = io.BytesIO()
    torch.save({f"features.{k}": v for k, v in state.items()}, buffer)
    data = buffer.getvalue()
    name = f"mobilenet_v3_large-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (tmp_path / name).write_bytes(data)
    hub.register_weights(hub.KnownWeights(
        name="mobilenet_v3_large.imagenet1k_v1", url=(tmp_path / name).as_uri(), task="backbone",
        architecture={"backbone": "mobilenet_v3_large"}), replace=True)  # fmt: skip
    model = segmnv3.build_model("lraspp", 3, reduced_tail=False, pretrained_backbone="imagenet")
    key = "15.block.0.0.weight"
    assert torch.equal(model.backbone.state_dict()[key], state[key])
    with pytest.raises(ValueError, match="unknown weights 'nope'; known: "):
        segmnv3.build_model("lraspp", 3, pretrained_backbone="nope")
    with pytest.raises(ValueError, match="are backbone weights"):
        segmnv3.build_model(weights="mobilenet_v3_large.imagenet1k_v1")


def test_share_a_trained_model_through_a_card(tmp_path, capsys):
    config = load_config(overrides=["model.backbone=mobilenet_v3_small", "name=team"])
    ckpt = make_checkpoint(tmp_path / "m.pt", config, CLASSES, PALETTE)
    args = ["--checkpoint", str(ckpt), "--format", "weights", "--output", str(tmp_path / "out")]
    assert export.main(args) == 0
    (card,) = (tmp_path / "out").glob("team-*.json")
    (pth,) = (tmp_path / "out").glob("team-*.pth")
    assert pth.stem == card.stem and json.loads(card.read_text())["classes"] == CLASSES
    assert export.main(args) == 2  # never replaces the shared files
    assert weights.main(["--registry", str(card)]) == 0
    assert "team" in capsys.readouterr().out
    image = np.random.default_rng(2).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    shared = Segmenter.from_pretrained("team", backend="torch", precision="fp32")
    local = Segmenter.from_checkpoint(ckpt, backend="torch", precision="fp32")
    assert np.array_equal(shared.predict(image), local.predict(image))
