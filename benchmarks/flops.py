"""Shared by the benchmarks: the matmul FLOPs of a training step and measured matmul rates.

torch is imported inside the functions, so that a benchmark sets its threads and OpenMP
environment before torch starts."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np


def train_flops_per_cell(n_genes: int, hidden: Sequence[int], n_factors: int) -> float:
    """Matmul FLOPs of one training step per cell: forward, and backward without the
    input gradient of the first layer."""
    sizes = [n_genes, *hidden, n_factors]
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)) + n_factors * n_genes
    return 2.0 * (3 * macs - n_genes * hidden[0])


def matmul_rate(shapes: Sequence[tuple[int, int, int]], dtype=None, repeats: int = 5) -> float:
    """GFLOP/s of the products ``(m, k) @ (k, n)`` of ``shapes`` with the current torch
    threads: their FLOPs over the sum of each product's median time of ``repeats``."""
    import torch

    flops = seconds = 0.0
    for m, k, n in shapes:
        x = torch.randn(m, k, dtype=dtype or torch.float32)
        y = torch.randn(k, n, dtype=dtype or torch.float32)
        out = x @ y
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(x, y, out=out)
            times.append(time.perf_counter() - t0)
        flops += 2.0 * m * k * n
        seconds += float(np.median(times))
    return flops / seconds / 1e9


def sgemm_rate(n: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of a square float32 matmul of size ``n`` (median of ``repeats``; robust to
    other jobs on a shared machine)."""
    return matmul_rate([(n, n, n)], repeats=repeats)
