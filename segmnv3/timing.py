"""Wall-clock timing that survives a shared, noisy machine."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch


def median_latency(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def interleaved_latency(fns: dict, repeats: int = 6, rounds: int = 3, settle: float = 0.3) -> dict:
    """Median wall time in seconds of each of ``fns`` (name → function), measured in
    ``rounds`` turns so that a slow spell of the machine hits all of them alike.

    Each turn starts with ``settle`` seconds of sleep and one untimed call, then
    ``repeats / rounds`` timed calls. Both matter: the worker threads of ONNX Runtime and of
    PyTorch's OpenMP keep spinning for a while after a run, and a function timed straight
    after another library's run would pay for that spinning."""
    rounds = max(1, min(rounds, repeats))
    per_round = -(-repeats // rounds)
    times: dict = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(settle)
            fn()
            for _ in range(per_round):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    return {name: float(np.median(t)) for name, t in times.items()}


def paired_difference(base, other, pairs: int = 20, pause: float = 0.05) -> float:
    """Median over ``pairs`` of ``other()``'s time minus ``base()``'s, in seconds, timed back
    to back in alternating order with ``pause`` seconds of sleep before each call (so that a
    runtime's spinning worker threads do not slow the next). What ``other`` adds to ``base``
    is far steadier this way than as the difference of two medians."""
    base(), other()
    diffs = []
    for i in range(pairs):
        took = {}
        for name, fn in (("base", base), ("other", other))[:: 1 if i % 2 else -1]:
            time.sleep(pause)
            t = time.perf_counter()
            fn()
            took[name] = time.perf_counter() - t
        diffs.append(took["other"] - took["base"])
    return float(np.median(diffs))


def matmul_rate(dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n×n matrix product in ``dtype`` on the CPU: the compute limit a
    network's rate is compared with (bf16 runs natively only where the CPU has it)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    seconds = median_latency(lambda: torch.mm(a, b), repeats=repeats, warmup=2)
    return 2 * n**3 / seconds / 1e9
