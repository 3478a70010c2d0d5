"""torch.distributed helpers: set-up from torchrun's environment, rank queries, sharding."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def init_distributed(device: str | torch.device = "cpu") -> bool:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on CUDA).

    Returns True when running distributed. Safe to call twice.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if int(os.environ["WORLD_SIZE"]) < 2:
        return False
    if not dist.is_initialized():
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if cuda else "gloo")
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, …``: every sample exactly once across processes.

    Unlike DistributedSampler it never pads with repeated samples, so evaluation counts each
    image once (the shards may differ in length by one).
    """

    def __init__(self, length: int, rank_: int | None = None, world: int | None = None) -> None:
        self.length = length
        self.rank = rank() if rank_ is None else rank_
        self.world = world_size() if world is None else world

    def __iter__(self):
        return iter(range(self.rank, self.length, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world))
