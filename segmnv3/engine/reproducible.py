"""What makes a run repeatable: per-epoch sample orders, per-sample augmentation seeds and
the RNG states saved in checkpoints."""

from __future__ import annotations

import math
import random

import numpy as np
import torch


class EpochSeeded(torch.utils.data.Dataset):
    """Seeds the wrapped dataset's augmentations per sample from ``(seed, epoch, index)``."""

    def __init__(self, dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        seed = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]
        self.dataset.transforms.set_random_seed(int(seed))
        return self.dataset[index]


def epoch_indices(n: int, epoch: int, seed: int, rank: int, world: int) -> list[int]:
    """This process's sample order for ``epoch``: a seeded permutation, padded to a multiple
    of ``world`` and sharded (the distributed sampler, reseeded each epoch)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    total = math.ceil(n / world) * world
    order += order[: total - n]
    return order[rank::world]


def get_rng_state() -> dict:
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": keys.tolist(), "pos": pos, "has_gauss": has_gauss, "gauss": gauss},
        "python": {"version": version, "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    keys = np.array(n["keys"], dtype=np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
