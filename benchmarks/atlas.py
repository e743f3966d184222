"""A simulated atlas for the scale benchmark: millions of cells written chunk by chunk.

The story of :func:`interpretable_ae.simulate.simulate_counts`, written straight to a
sparse ``.h5ad`` without holding the cells in memory, so that the benchmarks can stream
1M cells from disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from interpretable_ae.simulate import CONTROL, STIMULATED, random_gene_sets


def _condition(stimulated: np.ndarray) -> pd.Categorical:
    return pd.Categorical(
        np.where(stimulated, STIMULATED, CONTROL), categories=[CONTROL, STIMULATED]
    )


def write_counts_h5ad(
    path: str | Path,
    n_cells: int,
    n_genes: int = 2000,
    n_sets: int = 300,
    *,
    set_size: tuple[int, int] = (15, 60),
    n_planted: int = 3,
    n_cell_types: int = 8,
    strength: float = 1.0,
    fraction: float = 0.5,
    base: float = -3.0,
    target_sum: float = 1e4,
    chunk: int = 10_000,
    seed: int = 0,
    donors: int = 0,
) -> dict[str, list[str]]:
    """Write simulated log-normalised cells to ``path`` (sparse CSR ``X``); return the
    gene sets (the planted ones first).

    The story of :func:`interpretable_ae.simulate.simulate_counts`, chunk by chunk: gene means (``base`` shifts them
    down; -3 leaves ~10 % of the entries non-zero), cell-type programmes, size factors,
    the planted effect on the first ``n_planted`` sets in each cell with probability
    ``fraction``, Poisson counts, ``normalize_total`` to ``target_sum`` and ``log1p``.
    Chunk ``i`` is drawn from its own seeded stream, so the file depends on ``seed`` (and
    ``chunk``) only; obs has ``condition`` and ``cell_type`` (and, with ``donors``, a
    ``donor`` drawn at random for every cell: a paired design without a donor effect);
    uns['simulation'] records the planted terms and the gene sets (JSON).
    """
    import h5py

    rng = np.random.default_rng(seed)
    genes = np.array([f"GENE{i:05d}" for i in range(n_genes)])
    gene_sets = random_gene_sets(genes, n_sets, set_size, rng)
    planted = [f"SET_{k:03d}" for k in range(n_planted)]
    planted_idx = np.searchsorted(genes, sorted({g for t in planted for g in gene_sets[t]}))
    log_mean = (rng.normal(0.0, 1.0, size=n_genes) + base).astype(np.float32)
    programme = (
        (rng.random((n_cell_types, n_genes)) < 0.05)
        * rng.uniform(1.0, 2.5, size=(n_cell_types, n_genes))
    ).astype(np.float32)
    effect = (strength * rng.uniform(0.5, 1.5, size=len(planted_idx))).astype(np.float32)
    obs_parts = []
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        stored = None
        for start in range(0, n_cells, chunk):
            n = min(chunk, n_cells - start)
            crng = np.random.default_rng((seed, 1, start))
            cell_type = crng.integers(0, n_cell_types, size=n)
            stimulated = crng.random(n) < fraction
            counts = _chunk_lognorm(
                crng, log_mean + programme[cell_type], planted_idx, effect, stimulated,
                target_sum,
            )  # fmt: skip
            if stored is None:
                ad.io.write_elem(f, "X", counts)
                stored = ad.io.sparse_dataset(f["X"])
            else:
                stored.append(counts)
            obs_parts.append(_obs_part(crng, stimulated, cell_type, donors))
        ad.io.write_elem(f, "obs", _obs(obs_parts, n_cells, donors))
        ad.io.write_elem(f, "var", pd.DataFrame(index=pd.Index(genes)))
        for key in ("obsm", "varm", "layers", "obsp", "varp"):
            ad.io.write_elem(f, key, {})
        simulation = {
            "kind": "write_counts_h5ad",
            "terms": planted,
            "gene_sets": json.dumps(gene_sets),
            "strength": float(strength),
            "fraction": float(fraction),
            "seed": int(seed),
        }
        ad.io.write_elem(f, "uns", {"simulation": simulation})
    return gene_sets


def _obs_part(
    crng: np.random.Generator, stimulated: np.ndarray, cell_type: np.ndarray, donors: int
) -> pd.DataFrame:
    """One chunk's cells: condition, cell type and (with ``donors``) a random donor."""
    part = pd.DataFrame({"condition": _condition(stimulated), "cell_type": cell_type})
    if donors:
        part["donor"] = crng.integers(0, donors, size=len(stimulated))
    return part


def _obs(parts: list[pd.DataFrame], n_cells: int, donors: int) -> pd.DataFrame:
    """The chunks' cells as one obs, with cell names and categorical labels."""
    obs = pd.concat(parts, ignore_index=True)
    obs.index = pd.Index([f"cell{i:07d}" for i in range(n_cells)])
    obs["cell_type"] = pd.Categorical([f"type_{t}" for t in obs["cell_type"]])
    if donors:
        obs["donor"] = pd.Categorical([f"donor_{d}" for d in obs["donor"]])
    return obs


def _chunk_lognorm(
    crng: np.random.Generator, rate: np.ndarray, planted_idx: np.ndarray, effect: np.ndarray,
    stimulated: np.ndarray, target_sum: float,
) -> sp.csr_matrix:  # fmt: skip
    """One chunk of :func:`write_counts_h5ad`: the planted effect added to the cells' log
    rates (in place), size factors, Poisson counts, ``normalize_total`` and ``log1p``."""
    n = len(stimulated)
    activity = (crng.uniform(0.5, 1.5, size=n) * stimulated).astype(np.float32)
    rate[:, planted_idx] += activity[:, None] * effect[None, :]
    np.exp(rate, out=rate)
    rate *= crng.lognormal(0.0, 0.3, size=n).astype(np.float32)[:, None]
    counts = sp.csr_matrix(crng.poisson(rate).astype(np.float32))
    del rate
    total = np.asarray(counts.sum(axis=1)).ravel()
    counts.data *= np.repeat(target_sum / np.maximum(total, 1.0), np.diff(counts.indptr))
    np.log1p(counts.data, out=counts.data)
    return counts
