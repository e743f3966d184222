"""The simulator of the model package: planted gene-set activity with a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from interpretable_ae.simulate import plant_stimulation, simulate_counts


def test_extra_genes_respond_in_the_same_cells():
    adata, sets = simulate_counts(n_cells=200, n_genes=120, n_sets=4, strength=0.0, seed=3)
    genes = sets["SET_001"]
    base = plant_stimulation(adata, genes, strength=2.0, seed=5)
    out = plant_stimulation(adata, genes, strength=2.0, seed=5, extra_genes=30, extra_strength=0.5)
    extra = list(out.uns["simulation"]["genes_extra"])
    assert len(set(extra)) == 30 and not set(extra) & set(genes)
    assert out.uns["simulation"]["n_genes_planted"] == len(genes) + 30
    # the same stimulated cells; only they are shifted, on the set and the extra genes only
    assert (out.obs["condition"] == base.obs["condition"]).all()
    stim = (out.obs["condition"] == "stimulated").to_numpy()
    shift = out.X - adata.X
    moved = out.var_names.isin(genes + extra)
    assert (shift[~stim] == 0).all() and (shift[:, ~moved] == 0).all()
    # a planted entry is shifted only where detected (probability 0.8): the undetected share
    # is 0.2 within 4 binomial standard errors; a shift, where detected, is at least
    # strength x 0.5 x 0.5 and its mean strength x E[effect] x E[activity] = strength
    for moved_genes, strength in ((genes, 2.0), (extra, 0.5)):
        entries = shift[stim][:, out.var_names.isin(moved_genes)]
        undetected = (entries == 0).mean()
        assert abs(undetected - 0.2) < 4 * np.sqrt(0.2 * 0.8 / entries.size), undetected
        detected = entries[entries != 0]
        assert detected.min() >= strength * 0.25 * (1 - 1e-6)
        # effects are per gene: the mean's spread is that of a mean of len(moved_genes) U(0.5,1.5)
        spread = np.sqrt(1 / 12 / len(moved_genes) + 1 / 12 / stim.sum())
        assert abs(detected.mean() / strength - 1) < 4 * spread, detected.mean()
    # seeded: the same seed draws the same extra genes, another seed others
    again = plant_stimulation(adata, genes, strength=2.0, seed=5, extra_genes=30)
    other = plant_stimulation(adata, genes, strength=2.0, seed=6, extra_genes=30)
    assert list(again.uns["simulation"]["genes_extra"]) == extra
    assert list(other.uns["simulation"]["genes_extra"]) != extra
    with pytest.raises(ValueError, match=r"extra_genes must be between 0 and \d+ .* lower simul"):
        plant_stimulation(adata, genes, seed=5, extra_genes=adata.n_vars)


def test_simulate_counts_plants_the_first_sets_in_half_the_cells():
    adata, sets = simulate_counts(n_cells=300, n_genes=200, n_sets=10, n_planted=2, seed=4)
    assert adata.uns["simulation"]["terms"] == ["SET_000", "SET_001"]
    assert adata.obs["condition"].value_counts().to_dict() == {"control": 150, "stimulated": 150}
    stim = (adata.obs["condition"] == "stimulated").to_numpy()
    planted = adata.var_names.isin(sets["SET_000"] + sets["SET_001"])
    X = np.asarray(adata.X)
    up = X[stim][:, planted].mean() - X[~stim][:, planted].mean()
    # the other genes move only through the normalisation to equal totals (down a little)
    other = X[stim][:, ~planted].mean() - X[~stim][:, ~planted].mean()
    assert up > 0.2 and -up / 2 < other < 0
