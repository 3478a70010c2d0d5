import os

import pytest
import torch

_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
# The suite runs in pytest-xdist workers, one test file each at a time (pyproject's addopts:
# -n auto --dist loadfile). The workers share the cores: on 2 cores, two workers with one
# torch thread each take 6.3 min where one process with two threads takes 8.7 (and two
# workers with two threads each 7.2, the threads spinning against each other).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, _CORES or 1) // _WORKERS))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker a core, at most 4 (each holds a torch process and its
    module fixtures; the longest file takes a few minutes whatever the count)."""
    return max(1, min(4, _CORES or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
