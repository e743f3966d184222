"""The response share: how much of the condition's expression change each factor carries.

A factor model reconstructs each cell as ``x̂ = Σ_k z_k w_k`` (loadings ``z``, gene weights
``w``: the autoencoder's decoder, f-scLVM's posterior mean weights ``E[W]·Q(Z)``), so the
change of the reconstruction between the conditions splits over the factors:
``Δx̂ = Σ_k Δz_k w_k``, with ``Δ`` the case mean minus the control mean. Factor ``k``'s
**response share** is its part of the measured change ``Δx``, in the metric of the cells'
own variability::

    share_k = (Δz_k w_k)ᵀ S⁻¹ Δx / (Δxᵀ S⁻¹ Δx)

- ``S`` is the genes' covariance among the cells of each sample (all cells without
  samples), shrunk by Ledoit–Wolf (scikit-learn). It does not depend on the labels: it is
  the covariance of ``Δx`` when the labels are exchanged within samples, so the same
  metric serves the true labels and every permutation, and a permutation test of the share
  is exact. For a response that shifts the mean, the share is the same as with the
  covariance within conditions (the shift adds a rank-one term that changes no share).
  ``Δxᵀ S⁻¹ Δx`` is the squared Mahalanobis distance between the conditions, and
  ``share_k`` the factor's part of it.
- **Sign**: positive when the factor's change points along the response, negative when
  against it; the shares of all factors sum to the part of the response the model
  reconstructs, at most about 1.
- **Why whitened** (measured, docs/analyses.md): in the Euclidean metric (``S = I``) a
  factor's expected share under exchanged labels is its share of the expression
  *variance*, so a factor of a co-expressed programme (ribosomal, platelet genes) beats
  random gene sets with no response at all. Whitening gives every direction the same noise.
- **Units**: where the design has samples (donors), ``Δ`` weighs every sample equally
  (the mean over samples of the sample's condition means) and labels are permuted within
  samples (:func:`permuted_condition`).

The factor file's genes (``uns['gene_names']``) are matched to the prepared data's; the
covariance is estimated on at most ``max_cells`` cells (a seeded sample) to bound memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from sklearn.covariance import LedoitWolf

from iae_pipeline.samples import condition_levels

log = logging.getLogger(__name__)

MAX_CELLS = 50_000  # cells used for the covariance (a seeded sample above it)
CHUNK_ELEMENTS = 1 << 24  # labellings are measured cells x labellings <= this at a time
COVARIANCE_STREAM = 13  # the covariance sample's own stream
PERMUTATION_STREAM = 17  # the label permutations' own stream


@dataclass(frozen=True)
class Responses:
    """The measured change for several labellings of the cells (columns), in one metric."""

    contrasts: np.ndarray  # cells x labellings: Δ(anything) = anythingᵀ contrast
    whitened: np.ndarray  # genes x labellings: S⁻¹ Δx
    distance: np.ndarray  # labellings: Δxᵀ S⁻¹ Δx


def contrast_weights(is_case: np.ndarray, samples: np.ndarray | None = None) -> np.ndarray:
    """Cell weights ``c`` with ``Xᵀc`` = case mean minus control mean, every sample weighted
    equally (the mean over the case groups of their means minus that of the control groups).

    Examples
    --------
    >>> contrast_weights(np.array([True, False, False])).tolist()
    [1.0, -0.5, -0.5]
    """
    is_case = np.asarray(is_case, dtype=bool)
    if is_case.all() or not is_case.any():
        raise ValueError("the condition needs cells of both levels to measure a response")
    keys = is_case.astype(str)
    if samples is not None:
        keys = np.char.add(np.char.add(np.asarray(samples).astype(str), "\x00"), keys)
    codes = pd.factorize(keys)[0]
    sizes = np.bincount(codes)
    n_case, n_control = len(np.unique(codes[is_case])), len(np.unique(codes[~is_case]))
    return np.where(is_case, 1.0 / n_case, -1.0 / n_control) / sizes[codes]


def permuted_condition(
    condition: pd.Series, seed: int, samples: pd.Series | None = None, index: int = 0
) -> pd.Series:
    """The condition labels shuffled among the cells, within each sample when given; the
    ``index``-th permutation of ``seed`` (the numbers per sample and condition are kept)."""
    rng = np.random.default_rng((int(seed), PERMUTATION_STREAM, int(index)))
    values = condition.to_numpy().copy()
    if samples is None:
        return pd.Series(values[rng.permutation(len(values))], index=condition.index)
    out = values.copy()
    for _, cells in pd.Series(np.arange(len(values))).groupby(samples.to_numpy()):
        idx = cells.to_numpy()
        out[idx] = values[idx[rng.permutation(len(idx))]]
    return pd.Series(out, index=condition.index, dtype=condition.dtype)


def noise_covariance(
    X: object, samples: np.ndarray | None = None, *, max_cells: int = MAX_CELLS, seed: int = 0
) -> np.ndarray:
    """Ledoit–Wolf covariance of the genes after centring every sample's cells (all cells
    together without samples), on all cells or a seeded sample of ``max_cells``."""
    n = X.shape[0]
    rows = np.arange(n)
    if n > max_cells:
        rng = np.random.default_rng((int(seed), COVARIANCE_STREAM))
        rows = np.sort(rng.choice(n, size=max_cells, replace=False))
    block = X[rows]
    block = (block.toarray() if sp.issparse(block) else np.asarray(block)).astype(np.float64)
    codes = np.zeros(len(rows), int) if samples is None else pd.factorize(samples[rows])[0]
    sums = np.zeros((codes.max() + 1, block.shape[1]))
    np.add.at(sums, codes, block)
    block -= (sums / np.bincount(codes)[:, None])[codes]
    return LedoitWolf(assume_centered=True).fit(block).covariance_


def measure_responses(
    X: object, labellings: Sequence[np.ndarray], samples: np.ndarray | None, covariance
) -> Responses:
    """The change ``Δx`` of each labelling (0/1 arrays: case cells) of the cells of ``X``
    (dense or sparse), whitened with ``covariance``."""
    contrasts = np.stack([contrast_weights(lab, samples) for lab in labellings], axis=1)
    delta = np.asarray(X.T @ contrasts, dtype=np.float64)
    whitened = scipy.linalg.cho_solve(scipy.linalg.cho_factor(covariance), delta)
    return Responses(contrasts, whitened, (delta * whitened).sum(axis=0))


def factor_shares(loadings: np.ndarray, gene_weights: np.ndarray, responses: Responses):
    """Labellings x factors: ``Δz_k (w_kᵀ S⁻¹Δx) / (Δxᵀ S⁻¹Δx)``; ``gene_weights`` is
    factors x genes in the responses' gene order."""
    dz = np.asarray(loadings, dtype=np.float64).T @ responses.contrasts
    along = np.asarray(gene_weights, dtype=np.float64) @ responses.whitened
    distance = np.where(responses.distance > 0, responses.distance, np.inf)
    return (dz * along / distance).T


def aligned_expression(prepared: ad.AnnData, gene_names: Sequence[str]) -> object:
    """The prepared expression of ``gene_names`` (a factor file's genes), in that order."""
    idx = prepared.var_names.get_indexer([str(g) for g in gene_names])
    if (idx < 0).any():
        missing = [g for g, i in zip(gene_names, idx, strict=True) if i < 0][:3]
        raise ValueError(
            f"the factor file's genes {missing} are not in the prepared data; the factors "
            "come from other prepared data: rerun the model"
        )
    X = prepared.X
    return X[:, idx] if not np.array_equal(idx, np.arange(prepared.n_vars)) else X


def response_shares(
    factors: ad.AnnData,
    prepared: ad.AnnData,
    conditions: Sequence[pd.Series] | None = None,
    *,
    control: str | None = None,
    sample_key: str | None = None,
    max_cells: int = MAX_CELLS,
    seed: int = 0,
) -> pd.DataFrame:
    """Each factor's response share (module docstring) for one or more labellings.

    Parameters
    ----------
    factors
        A factor file (any model).
    prepared
        The prepared data the model was fitted on (same cells).
    conditions
        The labellings to measure the response with (default: ``prepared.obs['condition']``;
        permuted copies for the label control and the label null).
    control
        The control level (default: the level named like a control).
    sample_key
        The obs column of the samples (donors), or None.
    max_cells, seed
        The covariance's cell sample.

    Returns
    -------
    pandas.DataFrame
        Labellings x factors.

    Examples
    --------
    >>> shares = response_shares(factors, prepared)  # doctest: +SKIP
    >>> shares.iloc[0].sort_values().tail(3)  # the factors carrying most  # doctest: +SKIP
    """
    if factors.n_obs != prepared.n_obs or not np.array_equal(factors.obs_names, prepared.obs_names):
        raise ValueError(
            "the factor file's cells are not the prepared data's; rerun the model on the "
            "current prepared data"
        )
    conditions = [prepared.obs["condition"]] if conditions is None else list(conditions)
    _, case = condition_levels(conditions[0], control)
    samples = None if not sample_key else prepared.obs[sample_key].astype(str).to_numpy()
    X = aligned_expression(prepared, list(factors.uns["gene_names"]))
    covariance = noise_covariance(X, samples, max_cells=max_cells, seed=seed)
    labellings = [(c.astype(str) == case).to_numpy() for c in conditions]
    Z = factors.X.toarray() if sp.issparse(factors.X) else np.asarray(factors.X)
    W = np.asarray(factors.varm["gene_weights"])
    width = max(1, CHUNK_ELEMENTS // max(prepared.n_obs, 1))
    shares = [
        factor_shares(Z, W, measure_responses(X, labellings[i : i + width], samples, covariance))
        for i in range(0, len(labellings), width)
    ]
    return pd.DataFrame(np.vstack(shares), columns=factors.var_names.astype(str))
