"""Known weights by name: a registry, torch.hub's cache, verified downloads, offline first.

A name resolves to a file in torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)
under torchvision's file name, so a file torchvision downloaded already is used as it is.
Every file is checked against the SHA-256 prefix its name carries before it is loaded (and
loaded with ``weights_only=True``). The network is used only when the file is missing and
``SEGMNV3_OFFLINE`` is not set; a download goes to a ``.partial`` file that is renamed only
once complete and verified, so an interrupted one leaves nothing in the cache.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from .downloads import (
    MAX_DOWNLOAD_ENV,
    OFFLINE_ENV,
    DownloadError,
    IncompleteDownload,
    download,
    sha256_of,
    verify,
)
from .known_weights import (  # noqa: F401  (re-exported: hub's public names)
    BUILTIN_NAMES,
    TORCHVISION_RESIZE,
    VOC_CLASSES,
    VOC_PALETTE,
    WEIGHTS,
    KnownWeights,
    torchvision_segmentation_config,
)

REGISTRY_ENV = "SEGMNV3_WEIGHTS_REGISTRY"  # JSON files of extra entries, os.pathsep-separated

_loaded_registry_files: set[str] = set()
_card_files: dict[str, str] = {}  # card name -> the registry file that registered it


def register_weights(entry: KnownWeights | dict, *, replace: bool = False) -> KnownWeights:
    """Add an entry (or its card, a dict) to the registry: a team's own weights, served
    from http(s) or file:// URLs through the same cache and checks. A built-in name is never
    replaced by a card (:func:`load_registry_file`), an existing name only with
    ``replace=True``."""
    if isinstance(entry, dict):
        entry = _entry_of_card(entry)
    if entry.task not in ("segmentation", "backbone"):
        raise ValueError(f"weights {entry.name!r}: task {entry.task!r}; segmentation or backbone")
    entry.sha256_prefix  # noqa: B018  (raises for a file name without one)
    if entry.task == "segmentation":
        _check_segmentation_card(entry)
    known = WEIGHTS.get(entry.name)
    if known is not None and known != entry and not replace:
        raise ValueError(f"weights {entry.name!r} are registered already (replace=True)")
    WEIGHTS[entry.name] = entry
    return entry


def _entry_of_card(card: dict) -> KnownWeights:
    for key in ("classes", "palette"):
        value = card.get(key, [])
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f"weights card {card.get('name')!r}: {key!r} must be a list, "
                             f"got {value!r}")  # fmt: skip
    if not isinstance(card.get("architecture", {}), dict):
        raise ValueError(f"weights card {card.get('name')!r}: 'architecture' must be a mapping")
    return KnownWeights(**{k: _frozen(v) if k in ("classes", "palette") else v
                           for k, v in card.items()})  # fmt: skip


def _check_segmentation_card(entry: KnownWeights) -> None:
    arch = entry.architecture
    where = f"weights {entry.name!r}"
    if not arch.get("head"):
        raise ValueError(f"{where}: its architecture names no head (e.g. {{'head': 'lraspp', "
                         "'num_classes': 21}})")  # fmt: skip
    n = arch.get("num_classes")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"{where}: architecture.num_classes {n!r} is not a class count")
    if not all(isinstance(c, str) for c in entry.classes):
        raise ValueError(f"{where}: classes must be names (strings)")
    if entry.classes and len(entry.classes) != n:
        raise ValueError(f"{where}: {len(entry.classes)} class names for {n} outputs")
    if entry.palette and len(entry.palette) != n:
        raise ValueError(f"{where}: {len(entry.palette)} palette colours for {n} outputs")


def _frozen(value):
    return tuple(tuple(v) if isinstance(v, list) else v for v in value)


def load_registry_file(path: str | Path) -> list[str]:
    """Register the entries of a JSON file (one card or a list of cards); returns names."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"weights registry file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    cards = data if isinstance(data, list) else [data]
    if not all(isinstance(card, dict) for card in cards):
        raise ValueError(f"{path}: not a weights card (a JSON object, or a list of them)")
    names = [card.get("name") for card in cards]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{path}: two cards named {', '.join(map(str, twice))}")
    builtin = sorted(set(map(str, names)) & BUILTIN_NAMES)
    if builtin:
        raise ValueError(f"{path}: the card {builtin[0]!r} reuses a built-in name; give it its "
                         "own name")  # fmt: skip
    for name in names:
        owner = _card_files.get(name)
        if name in WEIGHTS and owner != str(path.resolve()):
            where = f"by {owner}" if owner else "already"
            raise ValueError(f"{path}: the card {name!r} reuses a name registered {where}; "
                             "give it its own name")  # fmt: skip
    try:
        # A file loaded again may update its own cards, never another file's or a built-in.
        registered = [register_weights(card, replace=True).name for card in cards]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    _card_files.update(dict.fromkeys(registered, str(path.resolve())))
    return registered


def _registry() -> dict[str, KnownWeights]:
    for item in filter(None, os.environ.get(REGISTRY_ENV, "").split(os.pathsep)):
        if item not in _loaded_registry_files:
            load_registry_file(item)
            _loaded_registry_files.add(item)
    return WEIGHTS


def get_weights(name: str) -> KnownWeights:
    """The registry entry called ``name``; an unknown name lists the known ones."""
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown weights {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]


def cache_dir() -> Path:
    """torch.hub's checkpoint folder, where torchvision keeps its downloads too."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(entry: KnownWeights) -> Path:
    return cache_dir() / entry.filename


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def list_weights() -> list[dict]:
    """One row per known entry: name, task, classes, metrics, parameters, cached or not."""
    rows = []
    for entry in _registry().values():
        path = cached_path(entry)
        rows.append({"name": entry.name, "task": entry.task, "classes": len(entry.classes),
                     "metrics": entry.metrics, "num_params": entry.num_params,
                     "cached": path.is_file(), "path": str(path), "url": entry.url,
                     "source": entry.source, "license": entry.license})  # fmt: skip
    return rows


def known_entry_of(path: str | Path) -> str | None:
    """The registry name whose SHA-256 prefix ``path``'s content has, or None."""
    digest = sha256_of(Path(path))
    for entry in _registry().values():
        if digest.startswith(entry.sha256_prefix):
            return entry.name
    return None


def weights_file(name_or_path: str | Path, *, progress: bool | None = None) -> Path:
    """A local weights file: a registry name's cached file (downloaded first when missing,
    unless ``SEGMNV3_OFFLINE`` is set) verified against its hash, or any other existing path
    as it is. A registry name is always the entry: a file in the working directory that
    happens to carry the name is not loaded in its place."""
    if str(name_or_path) not in _registry() and Path(name_or_path).is_file():
        return Path(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or Path(name_or_path).suffix in (".pth", ".pt")
    if looks_like_path and str(name_or_path) not in _registry():
        raise FileNotFoundError(f"weights file not found: {name_or_path}")
    entry = get_weights(str(name_or_path))
    path = cached_path(entry)
    if not path.is_file():
        if offline():
            raise FileNotFoundError(
                f"weights {entry.name!r} are not cached and {OFFLINE_ENV}=1 forbids downloading: "
                f"fetch {entry.url} elsewhere and place it at {path}"
            )
        download(entry, path, progress=sys.stderr.isatty() if progress is None else progress)
    verify(path, entry.sha256_prefix)
    return path


__all__ = ["MAX_DOWNLOAD_ENV", "OFFLINE_ENV", "DownloadError", "IncompleteDownload", "KnownWeights",
           "download", "get_weights", "list_weights", "register_weights", "sha256_of", "verify",
           "weights_file"]  # fmt: skip
