"""Fetching weights files: a new temp file beside the target (created exclusively, so a
planted file or link in a shared cache is never written through), a size cap, cut transfers
retried, the hash checked before the file takes its name. Used by :mod:`segmnv3.hub`."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.request
from pathlib import Path

from tqdm import tqdm

OFFLINE_ENV = "SEGMNV3_OFFLINE"


class DownloadError(OSError):
    """Weights that could not be fetched; the message says where to place them by hand."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, prefix: str) -> None:
    """Refuse a file whose SHA-256 does not start with ``prefix`` (it is never loaded)."""
    actual = sha256_of(path)
    if not actual.startswith(prefix):
        raise ValueError(
            f"{path}: SHA-256 {actual[: len(prefix)]}… does not match the expected {prefix}…; "
            "the file is corrupt or not these weights: delete it to download it again"
        )


MAX_DOWNLOAD_ENV = "SEGMNV3_MAX_DOWNLOAD_MB"
MAX_DOWNLOAD_MB = 2048  # far above any segmentation weights; stops an endless body


class IncompleteDownload(OSError):
    """A transfer that ended before its Content-Length (retried)."""


def download(
    entry,
    target: Path,
    *,
    progress: bool = False,
    retries: int = 3,
    timeout: float = 30.0,
) -> None:
    """Fetch ``entry.url`` (http, https or file) to ``target``: a new temp file beside it
    (created exclusively, so a planted ``.partial`` file or link is never written through),
    checked, then renamed over ``target``; retried with a pause; one error naming the URL,
    the path and the switch. At most ``$SEGMNV3_MAX_DOWNLOAD_MB`` (2048) MB are read."""
    target.parent.mkdir(parents=True, exist_ok=True)
    limit = int(float(os.environ.get(MAX_DOWNLOAD_ENV, MAX_DOWNLOAD_MB)) * 1e6)
    error: Exception | None = None
    for attempt in range(retries):
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".partial")
        partial = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(entry.url, out, partial.name, timeout, progress, limit)
            _verify_download(partial, entry)
            os.replace(partial, target)
            return
        except ValueError:  # a wrong hash or an oversized body will not get better
            raise
        except Exception as exc:  # network errors, timeouts, cut transfers, a refused URL
            error = exc
            time.sleep(0.5 * 2**attempt if attempt + 1 < retries else 0)
        finally:
            partial.unlink(missing_ok=True)
    raise DownloadError(
        f"cannot download weights {entry.name!r} from {entry.url} after {retries} tries "
        f"({error}); place the file by hand at {target}, or set {OFFLINE_ENV}=1 to never try "
        "the network"
    )


def _verify_download(partial: Path, entry) -> None:
    actual = sha256_of(partial)
    if not actual.startswith(entry.sha256_prefix):
        raise ValueError(
            f"weights {entry.name!r} downloaded from {entry.url}: SHA-256 "
            f"{actual[: len(entry.sha256_prefix)]}… does not match the expected "
            f"{entry.sha256_prefix}… (not these weights, or altered on the way); nothing was "
            "kept"
        )


def _fetch(url: str, out, name: str, timeout: float, progress: bool, limit: int) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        total = int(response.headers.get("Content-Length") or 0) or None
        if total is not None and total > limit:
            raise ValueError(f"{url} declares {total / 1e6:.0f} MB, over the {limit / 1e6:g} "
                             f"MB limit (${MAX_DOWNLOAD_ENV})")  # fmt: skip
        bar = tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress)
        received = 0
        with bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                received += len(block)
                if received > limit:
                    raise ValueError(f"{url} sent more than the {limit / 1e6:g} MB limit "
                                     f"(${MAX_DOWNLOAD_ENV}); nothing was kept")  # fmt: skip
                out.write(block)
                bar.update(len(block))
        if total is not None and received < total:
            raise IncompleteDownload(f"the transfer ended after {received} of {total} bytes")
