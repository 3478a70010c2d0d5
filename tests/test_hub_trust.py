"""Weights by name under hostile and careless use: a shared cache, planted files, cards that
reuse names or don't fit, endless and cut-short downloads."""

import json

import pytest
from test_hub import _served

from segmnv3 import downloads, hub

BUILTIN = "lraspp_mobilenet_v3_large.coco_with_voc_labels_v1"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(hub.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(downloads.time, "sleep", lambda s: None)
    saved, cards = dict(hub.WEIGHTS), dict(hub._card_files)
    yield tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.WEIGHTS.clear()
    hub.WEIGHTS.update(saved)
    hub._card_files.clear()
    hub._card_files.update(cards)


def test_a_planted_partial_link_is_never_written_through(tmp_path, cache):
    entry, data = _served(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("a user's notes")
    cache.mkdir(parents=True)
    (cache / (entry.filename + ".partial")).symlink_to(notes)
    path = hub.weights_file(entry.name, progress=False)
    assert notes.read_text() == "a user's notes"
    assert not path.is_symlink() and path.read_bytes() == data


def test_a_registry_name_is_never_a_local_file(tmp_path, cache, monkeypatch):
    entry, _ = _served(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / entry.name).write_bytes(b"not the weights")
    monkeypatch.setenv(hub.OFFLINE_ENV, "1")
    with pytest.raises(FileNotFoundError, match="not cached"):
        hub.weights_file(entry.name)


def _card_file(path, **changes):
    card = hub.get_weights(BUILTIN).card()
    card.update({"url": "file:///srv/demo-0123abcd.pth", **changes})
    path.write_text(json.dumps(card))
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({}, "reuses a built-in name"),
        ({"name": "x", "classes": "background"}, "'classes' must be a list"),
        ({"name": "x", "classes": ["a", "b", "c"]}, "3 class names for 21 outputs"),
        ({"name": "x", "architecture": {}}, "architecture names no head"),
        ({"name": "x", "palette": [[0, 0, 0]]}, "1 palette colours for 21 outputs"),
    ],
)
def test_bad_cards_are_refused_naming_the_file(tmp_path, changes, message):
    path = _card_file(tmp_path / "card.json", **changes)
    with pytest.raises(ValueError, match=message) as info:
        hub.load_registry_file(path)
    assert str(path) in str(info.value)
    assert hub.get_weights(BUILTIN).classes[15] == "person"  # the built-in is untouched


def test_a_card_cannot_replace_another_files_card(tmp_path):
    first = _card_file(tmp_path / "a.json", name="team")
    assert hub.load_registry_file(first) == ["team"]
    assert hub.load_registry_file(first) == ["team"]  # the same file again: fine
    second = _card_file(tmp_path / "b.json", name="team", url="file:///srv/other-89abcdef.pth")
    with pytest.raises(ValueError, match="b.json: the card 'team' reuses a name registered by"):
        hub.load_registry_file(second)
    assert hub.get_weights("team").url.endswith("demo-0123abcd.pth")


def test_an_endless_body_stops_at_the_cap_and_keeps_nothing(tmp_path, cache, monkeypatch):
    entry, _ = _served(tmp_path)
    monkeypatch.setenv(hub.MAX_DOWNLOAD_ENV, "0.5")  # the served file is 12 MB
    with pytest.raises(ValueError, match=r"declares 1\d MB, over the 0.5 MB limit"):
        hub.weights_file(entry.name, progress=False)
    assert not cache.exists() or list(cache.iterdir()) == []

    class Endless:  # a server that sends bytes forever, without a Content-Length
        headers: dict = {}

        def read(self, n):
            return b"x" * n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(downloads.urllib.request, "urlopen", lambda url, timeout: Endless())
    with pytest.raises(ValueError, match=r"sent more than the 0.5 MB limit"):
        hub.weights_file(entry.name, progress=False)
    assert list(cache.iterdir()) == []


def test_a_cut_transfer_is_retried_and_named(tmp_path, cache, monkeypatch):
    entry, data = _served(tmp_path)
    real, calls = downloads._fetch, []

    def cut_once(url, out, name, timeout, progress, limit):
        calls.append(url)
        if len(calls) == 1:
            out.write(data[:100])
            raise hub.IncompleteDownload(f"the transfer ended after 100 of {len(data)} bytes")
        return real(url, out, name, timeout, progress, limit)

    monkeypatch.setattr(downloads, "_fetch", cut_once)
    assert hub.weights_file(entry.name, progress=False).read_bytes() == data
    assert len(calls) == 2
    monkeypatch.setattr(downloads, "_fetch", lambda *a: (_ for _ in ()).throw(
        hub.IncompleteDownload("the transfer ended after 100 of 200 bytes")))  # fmt: skip
    (cache / entry.filename).unlink()
    with pytest.raises(hub.DownloadError, match="after 3 tries .*ended after 100 of 200") as info:
        hub.weights_file(entry.name, progress=False)
    assert entry.url in str(info.value)


def test_a_shared_name_cannot_leave_the_output_folder(tmp_path):
    from helpers import make_checkpoint

    from segmnv3.cli import export
    from segmnv3.config import load_config
    from segmnv3.data.synthetic import CLASSES, PALETTE

    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    ckpt = make_checkpoint(tmp_path / "m.pt", config, CLASSES, PALETTE)
    out = tmp_path / "out"
    for name in ("../escaped", "/abs", "a/b"):
        args = ["--checkpoint", str(ckpt), "--format", "weights", "--output", str(out),
                "--name", name]  # fmt: skip
        assert export.main(args) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
