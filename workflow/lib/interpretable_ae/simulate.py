"""Planted gene-set activity with a known truth: for tests, the demo and benchmarks.

Two entry points:

- :func:`plant_stimulation` takes real log-normalised cells (e.g. PBMCs) and plants an
  in-silico "stimulation" on the genes of chosen gene sets in a seeded random subset of
  cells. In stimulated cell ``c`` and planted gene ``g`` the log1p expression becomes
  ``x + effect_g * activity_c`` (kept only where a Bernoulli(``detection``) draw says
  the gene was detected), which multiplies ``counts + 1`` by ``exp(effect_g * activity_c)``.
  ``effect_g ~ strength * U(0.5, 1.5)`` and ``activity_c ~ U(0.5, 1.5)``.
  ``extra_genes`` further genes, drawn at random from the rest of the data, respond in
  the same cells with ``extra_strength``: a real response (IFN-β in Kang 2017 moves
  hundreds of genes) is broader than any one annotated set, and only a broad one is
  taken over by dense factors (the paper's f-scLVM result).
- :func:`simulate_counts` makes a whole data set: Poisson counts from gene means, cell-type
  programmes and size factors, the same planted effect in the stimulated cells, then
  ``normalize_total`` + ``log1p``. It also returns random gene sets, of which the planted
  ones are the first ``n_planted``.
- :func:`write_counts_h5ad` makes the same kind of data at atlas scale straight into an
  ``.h5ad`` with a sparse (CSR) ``X``, chunk by chunk: only one chunk of cells is ever
  held densely (for the scale benchmark, and to try backed data).

Both record what they planted in ``uns['simulation']`` and the condition in
``obs['condition']`` (``control`` / ``stimulated``).
"""

from __future__ import annotations

from collections.abc import Iterable

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

CONTROL, STIMULATED = "control", "stimulated"
EXTRA_STREAM = 1  # the extra genes' draw has its own stream: extra_genes=0 changes nothing


def _planted_shift(
    rng: np.random.Generator,
    n_cells: int,
    n_genes: int,
    stimulated: np.ndarray,
    strength: float | np.ndarray,
    detection: float,
) -> np.ndarray:
    """cells x genes additive log1p shift, zero in control cells; ``strength`` is one
    number or one per gene."""
    effect = strength * rng.uniform(0.5, 1.5, size=n_genes)
    activity = rng.uniform(0.5, 1.5, size=n_cells) * stimulated
    shift = activity[:, None] * effect[None, :]
    detected = rng.random((n_cells, n_genes)) < detection
    return (shift * detected).astype(np.float32)


def _condition(stimulated: np.ndarray) -> pd.Categorical:
    return pd.Categorical(
        np.where(stimulated, STIMULATED, CONTROL), categories=[CONTROL, STIMULATED]
    )


def plant_stimulation(
    adata: ad.AnnData,
    genes: Iterable[str],
    *,
    strength: float = 1.0,
    fraction: float = 0.5,
    detection: float = 0.8,
    seed: int = 0,
    terms: Iterable[str] = (),
    extra_genes: int = 0,
    extra_strength: float | None = None,
) -> ad.AnnData:
    """A copy of log-normalised data with a "stimulation" planted in a random part of the
    cells, on given genes: a known truth to recover.

    Parameters
    ----------
    adata
        Log-normalised expression (dense or sparse); not modified.
    genes
        The genes to shift; those absent from ``adata`` are ignored, at least one must be
        present.
    strength
        Mean shift of a planted gene's log expression in a stimulated cell.
    fraction
        Fraction of the cells stimulated, in (0, 1).
    detection
        Probability that a stimulated cell shows the shift in a given gene (dropout).
    seed
        Seeds every random draw.
    terms
        Which gene sets ``genes`` came from, recorded only.
    extra_genes
        This many more genes of ``adata`` (not among ``genes``) are drawn and shifted too,
        as a real response is broader than one gene set.
    extra_strength
        Their shift (default: ``strength``).

    Returns
    -------
    anndata.AnnData
        The copy, dense float32, with ``obs['condition']`` (``control`` / ``stimulated``)
        and ``uns['simulation']`` (the settings, the number of planted genes and the
        extra genes' names in ``genes_extra``).

    Raises
    ------
    ValueError
        ``fraction`` outside (0, 1), a negative ``extra_strength``, no planted gene in the
        data, or more ``extra_genes`` than the data have.

    Examples
    --------
    >>> adata, sets = simulate_counts(n_cells=100, n_genes=50, n_sets=3, set_size=(5, 8))
    >>> out = plant_stimulation(adata, sets["SET_001"], strength=2.0, extra_genes=10, seed=1)
    >>> out.obs["condition"].value_counts().tolist(), out.uns["simulation"]["extra_genes"]
    ([50, 50], 10)
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    extra_strength = strength if extra_strength is None else float(extra_strength)
    if extra_strength < 0:
        raise ValueError(f"extra_strength must be >= 0, got {extra_strength}")
    wanted = list(dict.fromkeys(genes))
    present = [g for g in wanted if g in adata.var_names]
    if not present:
        raise ValueError(
            "none of the genes to plant is in the data; check the gene set names and "
            "that the data use the same gene symbols"
        )
    others = adata.var_names[~adata.var_names.isin(present)]
    if not 0 <= extra_genes <= len(others):
        raise ValueError(
            f"extra_genes must be between 0 and {len(others)} (the data genes outside the "
            f"planted sets), got {extra_genes}; lower simulation.extra_genes"
        )
    extra_rng = np.random.default_rng((int(seed), EXTRA_STREAM))
    extra = sorted(extra_rng.choice(np.asarray(others), size=extra_genes, replace=False))
    rng = np.random.default_rng(seed)
    out = adata.copy()
    n = out.n_obs
    stimulated = np.zeros(n, dtype=bool)
    stimulated[rng.choice(n, size=int(round(fraction * n)), replace=False)] = True
    idx = out.var_names.get_indexer(present + extra)
    X = out.X.toarray() if sp.issparse(out.X) else np.array(out.X, dtype=np.float32)
    X = X.astype(np.float32, copy=False)
    strengths = np.r_[np.full(len(present), strength), np.full(len(extra), extra_strength)]
    X[:, idx] += _planted_shift(rng, n, len(idx), stimulated, strengths, detection)
    out.X = X
    out.obs["condition"] = _condition(stimulated)
    out.uns["simulation"] = {
        "kind": "plant_stimulation",
        "terms": list(terms),
        "n_genes_planted": len(present) + len(extra),
        "n_genes_requested": len(wanted),
        "extra_genes": int(extra_genes),
        "extra_strength": float(extra_strength),
        "genes_extra": np.asarray(extra, dtype=object),
        "strength": float(strength),
        "fraction": float(fraction),
        "detection": float(detection),
        "seed": int(seed),
    }
    return out


def simulate_counts(
    n_cells: int = 2000,
    n_genes: int = 1000,
    n_sets: int = 50,
    set_size: tuple[int, int] = (15, 60),
    n_planted: int = 3,
    n_cell_types: int = 4,
    strength: float = 1.0,
    fraction: float = 0.5,
    seed: int = 0,
) -> tuple[ad.AnnData, dict[str, list[str]]]:
    """Simulate log-normalised cells with planted gene-set activity.

    Poisson counts around per-gene means, cell-type programmes (5 % of the genes up in
    each type) and size factors; in a random ``fraction`` of the cells (the
    ``stimulated`` ones) the genes of the first ``n_planted`` sets go up. The counts are
    normalised to the median total and log1p-transformed.

    Parameters
    ----------
    n_cells, n_genes
        The data's size; genes are named ``GENE00000``, ...
    n_sets
        Random gene sets ``SET_000``, ... (:func:`random_gene_sets`).
    set_size
        Smallest and largest set size (inclusive).
    n_planted
        The first this many sets are planted.
    n_cell_types
        Cell types, ``type_0``, ... in ``obs['cell_type']``.
    strength
        Mean shift of the planted genes' log rate in stimulated cells.
    fraction
        Fraction of the cells stimulated.
    seed
        Seeds every draw.

    Returns
    -------
    adata : anndata.AnnData
        Cells x genes, float32, with ``obs['condition']``, ``obs['cell_type']`` and
        ``uns['simulation']`` (the planted terms in ``terms``).
    gene_sets : dict of str to list of str
        Every set, planted or not.

    Examples
    --------
    >>> adata, gene_sets = simulate_counts(n_cells=300, n_genes=200, n_sets=10, seed=0)
    >>> adata.shape, len(gene_sets), adata.uns["simulation"]["terms"]
    ((300, 200), 10, ['SET_000', 'SET_001', 'SET_002'])
    """
    rng = np.random.default_rng(seed)
    genes = np.array([f"GENE{i:05d}" for i in range(n_genes)])
    gene_sets = random_gene_sets(genes, n_sets, set_size, rng)
    planted = [f"SET_{k:03d}" for k in range(n_planted)]
    planted_genes = sorted({g for t in planted for g in gene_sets[t]})
    planted_idx = np.searchsorted(genes, planted_genes)

    # baseline: gene means, cell-type programmes (5% of genes up per type), size factors
    log_mean = rng.normal(0.0, 1.0, size=n_genes) - 0.5
    cell_type = rng.integers(0, n_cell_types, size=n_cells)
    programme = (rng.random((n_cell_types, n_genes)) < 0.05) * rng.uniform(
        1.0, 2.5, size=(n_cell_types, n_genes)
    )
    size_factor = rng.lognormal(0.0, 0.3, size=n_cells)
    stimulated = np.zeros(n_cells, dtype=bool)
    stimulated[rng.choice(n_cells, size=int(round(fraction * n_cells)), replace=False)] = True

    log_rate = log_mean[None, :] + programme[cell_type]
    log_rate[:, planted_idx] += _planted_shift(
        rng, n_cells, len(planted_idx), stimulated, strength, detection=1.0
    )
    counts = rng.poisson(size_factor[:, None] * np.exp(log_rate)).astype(np.float32)
    total = counts.sum(axis=1, keepdims=True)
    X = np.log1p(counts / np.maximum(total, 1.0) * np.median(total)).astype(np.float32)

    obs = pd.DataFrame(
        {
            "condition": _condition(stimulated),
            "cell_type": pd.Categorical([f"type_{t}" for t in cell_type]),
        },
        index=pd.Index([f"cell{i:06d}" for i in range(n_cells)]),
    )
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes)))
    adata.uns["simulation"] = {
        "kind": "simulate_counts",
        "terms": planted,
        "n_genes_planted": len(planted_genes),
        "strength": float(strength),
        "fraction": float(fraction),
        "seed": int(seed),
    }
    return adata, gene_sets


def random_gene_sets(
    genes: np.ndarray, n_sets: int, set_size: tuple[int, int], rng: np.random.Generator
) -> dict[str, list[str]]:
    """Random gene sets, ``SET_000``, ``SET_001``, ...

    Parameters
    ----------
    genes
        The genes to draw from.
    n_sets
        How many sets.
    set_size
        Smallest and largest size (inclusive); each set's size is drawn uniformly.
    rng
        The random generator.

    Returns
    -------
    dict of str to list of str
        Each set's genes, sorted, without repeats.
    """
    lo, hi = set_size
    return {
        f"SET_{k:03d}": sorted(
            rng.choice(genes, size=int(rng.integers(lo, hi + 1)), replace=False).tolist()
        )
        for k in range(n_sets)
    }
