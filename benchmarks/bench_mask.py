"""The annotation mask at full-genome size: how long ``build_mask`` takes for 20,000 genes x
3,000 gene sets of 10-400 genes (an MSigDB collection against a whole transcriptome).

    python benchmarks/bench_mask.py                  # 20,000 genes x 3,000 sets, best of 5
    python benchmarks/bench_mask.py --genes 60000 --terms 10000

Prints one Markdown row: the best and median wall and CPU seconds of ``build_mask`` over
``--repeats`` calls, the mask's size and the 1-minute load before and after (compare CPU
seconds when other jobs share the machine). The target is under a second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "lib"))

import numpy as np  # noqa: E402

from interpretable_ae.genesets import build_mask  # noqa: E402


def random_sets(n_genes: int, n_terms: int, seed: int = 0) -> tuple[list[str], dict]:
    """``n_genes`` gene names and ``n_terms`` sets of 10-400 of them, seeded."""
    rng = np.random.default_rng(seed)
    genes = np.array([f"GENE{i}" for i in range(n_genes)])
    sets = {
        f"TERM_{k}": genes[rng.choice(n_genes, size=int(rng.integers(10, 400)), replace=False)]
        for k in range(n_terms)
    }
    return genes.tolist(), {t: g.tolist() for t, g in sets.items()}


def time_build_mask(genes: list[str], sets: dict, repeats: int) -> dict[str, float]:
    """Wall and CPU seconds of ``build_mask`` over ``repeats`` calls: best and median."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        mask, _terms = build_mask(genes, sets, min_genes=10)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "best_s": min(wall), "median_s": statistics.median(wall),
        "best_cpu_s": min(cpu), "median_cpu_s": statistics.median(cpu), "nnz": mask.nnz,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--terms", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    genes, sets = random_sets(args.genes, args.terms)
    load_before = os.getloadavg()[0]
    r = time_build_mask(genes, sets, args.repeats)
    load_after = os.getloadavg()[0]
    print("| genes | sets | non-zeros | best: wall (CPU) s | median: wall (CPU) s | load |")
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    print(
        f"| {args.genes:,} | {args.terms:,} | {r['nnz']:,} | {r['best_s']:.3f} "
        f"({r['best_cpu_s']:.3f}) | {r['median_s']:.3f} ({r['median_cpu_s']:.3f}) "
        f"| {load_before:.1f} → {load_after:.1f} |"
    )


if __name__ == "__main__":
    main()
