"""The response share: how much of the condition's expression change each factor carries.

A factor model reconstructs each cell as ``x̂ = Σ_k z_k w_k`` (loadings ``z``, gene weights
``w``: the autoencoder's decoder, f-scLVM's posterior mean weights ``E[W]·Q(Z)``), so the
change of the reconstruction between the conditions splits over the factors:
``Δx̂ = Σ_k Δz_k w_k``, with ``Δ`` the case mean minus the control mean. Factor ``k``'s
**response share** is its part of the measured change ``Δx``, in the metric of the cells'
own variability::

    share_k = (Δz_k w_k)ᵀ S⁻¹ Δx / (Δxᵀ S⁻¹ Δx)

- ``S`` is the genes' covariance within the (sample, condition) groups, shrunk by
  Ledoit–Wolf (scikit-learn): the noise of ``Δx`` when the labels carry no response.
  ``Δxᵀ S⁻¹ Δx`` is the squared Mahalanobis distance between the conditions (Hotelling's
  T², up to a constant), and ``share_k`` the factor's part of it.
- **Sign**: positive when the factor's change points along the response, negative when
  against it; the shares of all factors sum to the part of the response the model
  reconstructs, at most about 1.
- **Why whitened** (measured, docs/analyses.md): in the Euclidean metric (``S = I``) a
  factor's expected share under exchanged labels is its share of the expression
  *variance*, so a factor of a co-expressed programme (ribosomal, platelet genes) beats
  random gene sets with no response at all; on 600 real Kang cells 13 % of label
  permutations gave a group at FDR 0.05. Whitening gives every direction the same noise.
- **Units**: where the design has samples (donors), ``Δ`` weighs every sample equally
  (the mean over samples of the sample's condition means) and ``S`` is pooled within
  samples; a label-permuted control permutes within samples (:func:`permuted_condition`).

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
COVARIANCE_STREAM = 13  # the covariance sample's own stream
PERMUTATION_STREAM = 17  # the label-permuted control's own stream


@dataclass(frozen=True)
class Response:
    """The measured change and its noise metric for one labelling of the cells."""

    contrast: np.ndarray  # cells: Δ(anything) = anythingᵀ contrast
    delta: np.ndarray  # genes: Δx
    whitened: np.ndarray  # genes: S⁻¹ Δx
    distance: float  # Δxᵀ S⁻¹ Δx


def group_codes(condition: np.ndarray, samples: np.ndarray | None) -> np.ndarray:
    """One integer per (sample, condition) group of cells (per condition without samples)."""
    keys = (
        condition.astype(str)
        if samples is None
        else np.char.add(np.char.add(samples.astype(str), "\x00"), condition.astype(str))
    )
    return pd.factorize(keys)[0]


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
    codes = group_codes(is_case, samples)
    sizes = np.bincount(codes)
    case_groups = np.unique(codes[is_case])
    control_groups = np.unique(codes[~is_case])
    weights = np.where(is_case, 1.0 / len(case_groups), -1.0 / len(control_groups)) / sizes[codes]
    return weights


def permuted_condition(
    condition: pd.Series, seed: int, samples: pd.Series | None = None
) -> pd.Series:
    """The condition labels shuffled among the cells, within each sample when given
    (seeded; the numbers of cells per sample and condition are kept)."""
    rng = np.random.default_rng((int(seed), PERMUTATION_STREAM))
    values = condition.to_numpy().copy()
    if samples is None:
        return pd.Series(values[rng.permutation(len(values))], index=condition.index)
    out = values.copy()
    for _, cells in pd.Series(np.arange(len(values))).groupby(samples.to_numpy()):
        idx = cells.to_numpy()
        out[idx] = values[idx[rng.permutation(len(idx))]]
    return pd.Series(out, index=condition.index, dtype=condition.dtype)


def _dense_rows(X: object, rows: np.ndarray) -> np.ndarray:
    block = X[rows]
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    return block.astype(np.float64)


def within_covariance(
    X: object, codes: np.ndarray, *, max_cells: int = MAX_CELLS, seed: int = 0
) -> np.ndarray:
    """Ledoit–Wolf covariance of the genes after centring every group of cells (``codes``),
    on all cells or a seeded sample of ``max_cells``."""
    n = X.shape[0]
    rows = np.arange(n)
    if n > max_cells:
        rng = np.random.default_rng((int(seed), COVARIANCE_STREAM))
        rows = np.sort(rng.choice(n, size=max_cells, replace=False))
    block = _dense_rows(X, rows)
    sub = codes[rows]
    sums = np.zeros((sub.max() + 1, block.shape[1]))
    np.add.at(sums, sub, block)
    block -= (sums / np.bincount(sub)[:, None])[sub]
    return LedoitWolf(assume_centered=True).fit(block).covariance_


def measure_response(
    X: object,
    is_case: np.ndarray,
    samples: np.ndarray | None = None,
    *,
    max_cells: int = MAX_CELLS,
    seed: int = 0,
) -> Response:
    """``Δx``, ``S⁻¹Δx`` and the squared distance for a labelling of the cells of ``X``
    (cells x genes, dense or sparse)."""
    weights = contrast_weights(is_case, samples)
    delta = np.asarray(X.T @ weights, dtype=np.float64).ravel()
    cov = within_covariance(X, group_codes(np.asarray(is_case), samples), max_cells=max_cells,
                            seed=seed)  # fmt: skip
    whitened = scipy.linalg.cho_solve(scipy.linalg.cho_factor(cov), delta)
    return Response(weights, delta, whitened, float(delta @ whitened))


def factor_shares(loadings: np.ndarray, gene_weights: np.ndarray, response: Response) -> np.ndarray:
    """Per factor: ``Δz_k (w_kᵀ S⁻¹Δx) / (Δxᵀ S⁻¹Δx)``; ``gene_weights`` is factors x genes
    in the response's gene order."""
    dz = np.asarray(loadings, dtype=np.float64).T @ response.contrast
    along = np.asarray(gene_weights, dtype=np.float64) @ response.whitened
    if response.distance <= 0:
        return np.zeros(len(dz))
    return dz * along / response.distance


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
    *,
    condition: pd.Series | None = None,
    control: str | None = None,
    sample_key: str | None = None,
    max_cells: int = MAX_CELLS,
    seed: int = 0,
) -> pd.Series:
    """Each factor's response share (module docstring), indexed by factor name.

    Parameters
    ----------
    factors
        A factor file (any model).
    prepared
        The prepared data the model was fitted on (same cells).
    condition
        The labels to measure the response with (default ``prepared.obs['condition']``;
        a permuted copy for the label control).
    control
        The control level (default: the level named like a control).
    sample_key
        The obs column of the samples (donors), or None.
    max_cells, seed
        The covariance's cell sample.

    Returns
    -------
    pandas.Series
        One share per factor.
    """
    if factors.n_obs != prepared.n_obs or not np.array_equal(factors.obs_names, prepared.obs_names):
        raise ValueError(
            "the factor file's cells are not the prepared data's; rerun the model on the "
            "current prepared data"
        )
    labels = prepared.obs["condition"] if condition is None else condition
    ctrl, case = condition_levels(labels, control)
    samples = None if not sample_key else prepared.obs[sample_key].astype(str).to_numpy()
    X = aligned_expression(prepared, list(factors.uns["gene_names"]))
    response = measure_response(
        X, (labels.astype(str) == case).to_numpy(), samples, max_cells=max_cells, seed=seed
    )
    Z = factors.X.toarray() if sp.issparse(factors.X) else np.asarray(factors.X)
    shares = factor_shares(Z, np.asarray(factors.varm["gene_weights"]), response)
    return pd.Series(shares, index=factors.var_names.astype(str), name="response_share")
