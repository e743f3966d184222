"""Recovery: planted gene-set activity ranks the planted terms at the top."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from interpretable_ae.autoencoder import InterpretableAutoencoder
from interpretable_ae.simulate import simulate_counts


def univariate_accuracy(latents: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """In-sample accuracy of a logistic regression on each factor alone (as the paper)."""
    return np.array(
        [
            LogisticRegression().fit(latents[:, [k]], labels).score(latents[:, [k]], labels)
            for k in range(latents.shape[1])
        ]
    )


@pytest.mark.slow
def test_planted_terms_rank_top_by_logistic_accuracy():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        adata, gene_sets = simulate_counts(n_cells=1000, n_genes=400, n_sets=20, seed=1)
        ae = InterpretableAutoencoder(adata, gene_sets, seed=0)
        ae.train(epochs=30, batch_size=62, lr=2e-3, progress=False)
    finally:
        torch.set_num_threads(before)
    planted = adata.uns["simulation"]["terms"]
    acc = univariate_accuracy(
        adata.obsm["X_interpretable_ae"], (adata.obs["condition"] == "stimulated").to_numpy()
    )
    top = [ae.factor_names[k] for k in np.argsort(-acc, kind="stable")[: len(planted)]]
    assert sorted(top) == sorted(planted), dict(zip(ae.factor_names, acc.round(3), strict=True))
    assert acc[: len(planted)].min() > 0.9  # planted sets are SET_000.. = first factors
