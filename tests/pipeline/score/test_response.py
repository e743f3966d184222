"""The response share: each factor's part of the condition's change, whitened by the cells'
own variability, with samples weighted equally and a label control within samples."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from iae_pipeline.contract import make_factor_anndata
from iae_pipeline.score.response import (
    contrast_weights,
    factor_shares,
    measure_responses,
    noise_covariance,
    permuted_condition,
    response_shares,
)


def shares_of(X, labels, Z, w, samples=None):
    """Factor shares for one labelling, in the whitened metric."""
    responses = measure_responses(X, [labels], samples, noise_covariance(X, samples))
    return factor_shares(Z, w, responses)[0]


def test_contrast_weights_give_every_sample_the_same_weight() -> None:
    is_case = np.array([1, 0, 0, 1, 1, 1, 0, 0], dtype=bool)
    assert contrast_weights(is_case) @ is_case == pytest.approx(1.0)
    samples = np.array(["a", "a", "a", "b", "b", "b", "b", "b"])
    w = contrast_weights(is_case, samples)
    x = np.array([10.0, 0, 0, 4, 4, 4, 2, 2])  # a: 10 vs 0, b: 4 vs 2
    assert w @ x == pytest.approx(((10 - 0) + (4 - 2)) / 2)  # the mean of per-sample changes
    with pytest.raises(ValueError, match="both levels"):
        contrast_weights(np.ones(3, dtype=bool))


def test_permutation_within_samples_keeps_each_sample_s_counts() -> None:
    rng = np.random.default_rng(0)
    condition = pd.Series(rng.choice(["control", "stimulated"], 200))
    samples = pd.Series(rng.choice(["d1", "d2", "d3"], 200))
    permuted = permuted_condition(condition, seed=4, samples=samples)
    before = pd.crosstab(samples, condition)
    after = pd.crosstab(samples, permuted)
    pd.testing.assert_frame_equal(before, after)
    assert (permuted != condition).mean() > 0.3
    assert permuted.equals(permuted_condition(condition, seed=4, samples=samples))
    other = permuted_condition(condition, seed=4, samples=samples, index=1)
    assert not permuted.equals(other)  # the label null's permutations are other draws


def data_with_programme(seed: int = 0, n: int = 600, genes: int = 40):
    """Cells with a strong co-expressed programme on genes 0-9 (no condition effect) and a
    response to the condition on genes 10-14; factor 0 = the programme, factor 1 = the
    response, both exact parts of the data."""
    rng = np.random.default_rng(seed)
    is_case = np.arange(n) < n // 2
    programme = rng.normal(0, 3.0, n)
    w = np.zeros((2, genes))
    w[0, :10] = 1.0
    w[1, 10:15] = 1.0
    Z = np.c_[programme, 1.0 * is_case]
    X = Z @ w + rng.normal(0, 1.0, (n, genes))
    return X, is_case, Z, w


def test_a_factor_that_reconstructs_the_response_carries_it() -> None:
    X, is_case, Z, w = data_with_programme()
    shares = shares_of(X, is_case, Z, w)
    assert shares[1] == pytest.approx(1.0, abs=0.1)
    assert abs(shares[0]) < 0.05
    against = shares_of(X, is_case, -Z[:, 1:], w[1:])
    assert against[0] < -0.9  # loadings against the response: a negative share (the sign)


def test_the_metric_ignores_the_labels_and_the_response_s_own_variance() -> None:
    """The covariance is taken over all cells (within samples), not within conditions: a
    response that shifts the mean adds a rank-one term that changes no share."""
    X, is_case, Z, w = data_with_programme()
    total = shares_of(X, is_case, Z, w)
    within = X.copy()
    for c in (True, False):
        within[is_case == c] -= within[is_case == c].mean(0)
    cov = noise_covariance(within)  # the covariance within conditions
    responses = measure_responses(X, [is_case], None, cov)
    np.testing.assert_allclose(factor_shares(Z, w, responses)[0], total, atol=0.02)


def test_without_a_response_a_large_programme_carries_no_more_than_noise() -> None:
    """Why whitened: with exchanged labels, the Euclidean share of a factor is on average
    its share of the variance, so a co-expressed programme beats everything; the whitened
    share is not larger for it than for a factor of the same genes' noise."""
    X, _, Z, w = data_with_programme()
    rng = np.random.default_rng(1)
    noise_factor = X[:, 20:30] @ np.ones(10) / 10  # a factor of ten noise genes
    Zb = np.c_[Z[:, 0], noise_factor]
    wb = np.vstack([w[0], np.r_[np.zeros(20), np.ones(10), np.zeros(10)]])
    whitened, euclidean = [], []
    labels = [rng.permutation(np.arange(len(X)) < len(X) // 2) for _ in range(60)]
    whitened = factor_shares(Zb, wb, measure_responses(X, labels, None, noise_covariance(X)))
    euclidean = factor_shares(Zb, wb, measure_responses(X, labels, None, np.eye(X.shape[1])))
    whitened, euclidean = np.mean(whitened, axis=0), np.mean(euclidean, axis=0)
    assert euclidean[0] > 0.3 and euclidean[0] > 5 * abs(euclidean[1])
    assert whitened[0] < 0.15 and whitened[0] < abs(whitened[1]) + 0.1


def adata_pair(seed: int = 0):
    X, is_case, Z, w = data_with_programme(seed)
    obs = pd.DataFrame(
        {"condition": np.where(is_case, "stimulated", "control"), "cell_type": "x",
         "donor": np.tile(["d1", "d2", "d3"], len(X) // 3)},
        index=[f"c{i}" for i in range(len(X))],
    )  # fmt: skip
    genes = [f"g{i}" for i in range(X.shape[1])]
    prepared = ad.AnnData(sp.csr_matrix(X.astype(np.float32)), obs=obs,
                          var=pd.DataFrame(index=genes))  # fmt: skip
    factors = make_factor_anndata(
        Z, obs, ["PROGRAMME", "RESPONSE"], ["annotated"] * 2, w.T, genes, [True, True],
        {"model": "m", "setup": "m", "seed": 0},
    )  # fmt: skip
    return factors, prepared


def test_response_shares_of_a_factor_file() -> None:
    factors, prepared = adata_pair()
    shares = response_shares(factors, prepared, sample_key="donor").iloc[0]
    assert list(shares.index) == ["PROGRAMME", "RESPONSE"]
    assert shares["RESPONSE"] > 0.9 and abs(shares["PROGRAMME"]) < 0.05
    # a factor file over a subset of the genes (f-scLVM without pruned genes) is aligned
    sub = factors.copy()
    sub.varm["gene_weights"] = factors.varm["gene_weights"][:, 5:]
    sub.uns["gene_names"] = factors.uns["gene_names"][5:]
    assert response_shares(sub, prepared).iloc[0]["RESPONSE"] > 0.9
    labels = [permuted_condition(prepared.obs["condition"], 0, prepared.obs["donor"], index=i)
              for i in range(30)]  # fmt: skip
    null = response_shares(factors, prepared, labels, sample_key="donor")
    assert null.shape == (30, 2) and null["RESPONSE"].abs().max() < 0.2
    first = response_shares(factors, prepared, labels[:1], sample_key="donor")
    np.testing.assert_allclose(first.to_numpy(), null.iloc[:1].to_numpy())  # chunks agree


def test_mismatched_files_are_refused() -> None:
    factors, prepared = adata_pair()
    with pytest.raises(ValueError, match="cells"):
        response_shares(factors[:10].copy(), prepared)
    other = factors.copy()
    other.uns["gene_names"] = np.asarray(["x"] + list(factors.uns["gene_names"][1:]), dtype=object)
    with pytest.raises(ValueError, match="genes"):
        response_shares(other, prepared)
