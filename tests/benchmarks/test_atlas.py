"""The scale benchmark's simulated atlas: sparse, normalised, seeded chunk by chunk."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
from atlas import write_counts_h5ad


def test_write_counts_h5ad_writes_sparse_cells_chunk_by_chunk(tmp_path):
    path = tmp_path / "cells.h5ad"
    sets = write_counts_h5ad(path, 2500, n_genes=300, n_sets=12, n_planted=2, chunk=1000)
    adata = ad.read_h5ad(path, backed="r")
    assert adata.shape == (2500, 300) and adata.X.format == "csr"
    assert json.loads(adata.uns["simulation"]["gene_sets"]) == sets
    x = adata.to_memory().X
    assert 0.03 < x.nnz / (2500 * 300) < 0.3  # sparse, as counts at depth 1e4 / 300 genes
    np.testing.assert_allclose(np.expm1(x).sum(axis=1), 1e4, rtol=1e-4)  # normalize_total
    stim = (adata.obs["condition"] == "stimulated").to_numpy()
    assert 0.4 < stim.mean() < 0.6
    planted = adata.var_names.isin(sets["SET_000"] + sets["SET_001"])
    dense = x.toarray()
    assert dense[stim][:, planted].mean() > dense[~stim][:, planted].mean() + 0.1
    # seeded, and chunks are independent streams: the same file again, cell for cell
    again = write_counts_h5ad(
        tmp_path / "again.h5ad", 2500, n_genes=300, n_sets=12, n_planted=2, chunk=1000
    )
    assert again == sets
    assert (ad.read_h5ad(tmp_path / "again.h5ad").X != x).nnz == 0
