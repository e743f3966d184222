"""Empirical p-values against the random-mask null: matching, the fitted tail, BH."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from iae_pipeline.analyses.null import (
    P_COLUMNS,
    NullSettings,
    matched,
    null_pvalues,
    tail_pvalue,
)

SETTINGS = NullSettings()


def test_within_the_bulk_the_p_value_is_the_empirical_one() -> None:
    null = np.arange(1000, dtype=float)
    p, how = tail_pvalue(null, 899.5, SETTINGS)  # 100 values at or above
    assert how == "empirical" and p == pytest.approx(101 / 1001)
    assert tail_pvalue(null, -5.0, SETTINGS)[0] == pytest.approx(1.0)


def test_the_fitted_tail_resolves_beyond_the_random_fits() -> None:
    rng = np.random.default_rng(0)
    null = rng.exponential(1.0, size=2000)
    for x in (9.0, 11.0):  # P(X >= x) = exp(-x): 1.2e-4 and 1.7e-5, beyond 1 / 2001
        p, how = tail_pvalue(null, x, SETTINGS)
        assert how == "gpd"
        assert np.exp(-x) / 4 < p < np.exp(-x) * 4
    p_far, _ = tail_pvalue(null, 1e6, SETTINGS)  # never below the extrapolation floor
    assert p_far == pytest.approx(1 / (SETTINGS.max_extrapolation * 2001))


def test_under_the_null_the_p_values_are_uniform_or_conservative() -> None:
    rng = np.random.default_rng(1)
    nulls = rng.standard_t(3, size=(400, 500))  # heavy tails, as random units have
    observed = rng.standard_t(3, size=400)
    p = np.array([tail_pvalue(n, x, SETTINGS)[0] for n, x in zip(nulls, observed, strict=True)])
    assert abs((p < 0.2).mean() - 0.2) < 0.06
    assert (p < 0.01).mean() < 0.03


def test_matching_widens_the_gene_window_but_never_the_members() -> None:
    genes = np.array([10, 12, 14, 40, 80, 10, 11])
    members = np.array([1, 1, 1, 1, 1, 3, 3])
    one = matched(10, 1, genes, members, NullSettings(min_null=3))
    assert one.tolist() == [True, True, True, False, False, False, False]
    wide = matched(10, 1, genes, members, NullSettings(min_null=4))
    assert wide[:5].tolist() == [True, True, True, True, False] and not wide[5:].any()
    three = matched(10, 3, genes, members, NullSettings(min_null=100))
    assert three.tolist() == [False] * 5 + [True, True]  # all it has, of its own shape


def test_null_pvalues_match_by_size_and_adjust_by_bh() -> None:
    rng = np.random.default_rng(2)
    k, sizes = 30, np.array([5, 5, 50, 50, 50])
    # random units' scores grow with their size; unit 2 is far above its size
    null = rng.normal(0, 1, (k, 5)) + 0.1 * sizes
    observed = np.array([0.5, 0.4, 15.0, 5.2, 4.9])
    out = null_pvalues(observed, sizes, null.ravel(), np.tile(sizes, k),
                       settings=NullSettings(min_null=50))  # fmt: skip
    assert list(out.columns) == list(P_COLUMNS)
    assert (out["n_null"] == 60).all() or (out["n_null"] >= 50).all()
    assert out["pvalue"].iloc[2] < 0.001 and out["pvalue"].iloc[0] > 0.1
    # matched by size: units 0 and 2 are not compared with the same random units
    assert out["null_median"].iloc[2] > out["null_median"].iloc[0] + 3
    np.testing.assert_allclose(out["padj"], multipletests(out["pvalue"], method="fdr_bh")[1])


def test_units_need_genes() -> None:
    with pytest.raises(ValueError, match="gene"):
        null_pvalues(np.zeros(1), np.zeros(1), np.zeros(3), np.ones(3))
