"""Delete and recover: the mask edit, the counting, and the test on the demo's planted term."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from recovery import delete_and_recover, delete_genes, recovery_counts, term_genes

from iae_pipeline.prepare.datasets import load_pbmc68k_demo
from iae_pipeline.prepare.preprocess import prepare
from iae_pipeline.prepare.simulation import simulate_dataset
from interpretable_ae.genesets import build_mask, merge_gene_sets, read_gmt, select_terms

PLANTED = "HALLMARK_INTERFERON_GAMMA_RESPONSE"
PAPER = {"epochs": 80, "batch_size": 62, "lr": 1e-3, "lambda0": 0.1, "lambda1": 0.93,
         "lambda3": 0.57}  # fmt: skip


@pytest.fixture
def annotated(small_data):
    adata, sets = small_data
    mask, terms = build_mask(adata.var_names, sets, min_genes=3)
    adata.varm["geneset_mask"], adata.uns["geneset_terms"] = mask, np.asarray(terms, dtype=object)
    return adata


def test_delete_genes_edits_the_mask_only(annotated) -> None:
    term = str(annotated.uns["geneset_terms"][0])
    genes = term_genes(annotated, term)[:2]
    before = sp.csr_matrix(annotated.varm["geneset_mask"]).toarray()
    rows = annotated.var_names.get_indexer(genes)
    only_term = delete_genes(annotated, term, genes, scope="term").toarray()
    assert (only_term[rows, 0] == 0).all()
    changed = before != only_term
    assert changed.sum() == 2 and changed[:, 0].sum() == 2
    everywhere = delete_genes(annotated, term, genes, scope="annotation").toarray()
    assert (everywhere[rows] == 0).all()
    assert (everywhere[np.setdiff1d(np.arange(annotated.n_vars), rows)] ==
            before[np.setdiff1d(np.arange(annotated.n_vars), rows)]).all()  # fmt: skip
    assert (sp.csr_matrix(annotated.varm["geneset_mask"]).toarray() == before).all()
    outside = [g for g in annotated.var_names if g not in term_genes(annotated, term)][:1]
    with pytest.raises(ValueError, match="not annotated to"):
        delete_genes(annotated, term, outside)
    with pytest.raises(ValueError, match="scope 'all' is unknown"):
        delete_genes(annotated, term, genes, scope="all")
    with pytest.raises(ValueError, match="term 'NOPE' is not in"):
        term_genes(annotated, "NOPE")


def test_recovery_counts_ignore_zero_weights() -> None:
    w = pd.Series({"a": 0.9, "b": -0.8, "c": 0.1, "d": 0.0, "e": 0.0})
    assert recovery_counts(w, ["b", "c"], n_top=2) == (1, [2, 3])
    # zero weights tie at the last rank and never count, even when n_top reaches them
    assert recovery_counts(w, ["d", "e"], n_top=5) == (0, [4, 4])


def test_rounds_are_seeded_and_refuse_bad_k(annotated) -> None:
    term = str(annotated.uns["geneset_terms"][0])
    n = len(term_genes(annotated, term))
    with pytest.raises(ValueError, match=f"has {n} annotated genes"):
        delete_and_recover(annotated, term, {"epochs": 1}, k=n)
    one = delete_and_recover(annotated, term, {"epochs": 2}, k=2, seed=0)
    two = delete_and_recover(annotated, term, {"epochs": 2}, k=2, seed=0)
    assert one == two and one["n_top"] == n and len(one["deleted"].split(",")) == 2
    assert set(one["control_genes"].split(",")).isdisjoint(term_genes(annotated, term))


@pytest.fixture(scope="module")
def demo_planted(real):
    """The demo's data with the planted term only (no extra responding genes), centred."""
    sets = merge_gene_sets(
        {
            "hallmark": read_gmt(real("genesets/h.all.v7.5.1.symbols.gmt")),
            "reactome": read_gmt(real("genesets/c2.cp.reactome.v7.5.1.symbols.gmt")),
        }
    )
    sets = select_terms(sets, ["HALLMARK_", "REACTOME_"])
    sim = {"terms": [PLANTED], "strength": 2.0, "fraction": 0.5, "seed": 0}
    planted = simulate_dataset(load_pbmc68k_demo(), sets, sim, data_type="lognorm")
    adata = prepare(planted, sets, data_type="lognorm", n_top_genes=1000, min_genes=19)
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    adata.X = X - X.mean(axis=0, keepdims=True)
    return adata


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_planted_term_takes_back_its_deleted_genes(demo_planted, seed) -> None:
    """The target: at least 4 of 5 deleted genes come back among the planted term's top
    genes (paper settings, genes removed from every set); the control genes do not."""
    result = delete_and_recover(
        demo_planted, PLANTED, PAPER, k=5, scope="annotation", seed=seed,
        deletion_seed=1000 + seed,
    )  # fmt: skip
    assert result["active"] and result["n_top"] == len(term_genes(demo_planted, PLANTED))
    assert result["recovered"] >= 4, result
    assert result["control"] <= 1, result
