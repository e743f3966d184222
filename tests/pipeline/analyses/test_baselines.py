"""Classical baselines: prerank GSEA, score_genes, and their agreement with the models."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from helpers.drawn import record_saved_figures
from helpers.script_runner import run_as_snakemake
from iae_pipeline.analyses.baselines import (
    agreement_table,
    gene_ranking,
    model_term_ranks,
    overlap_matrix,
    prerank_gsea,
    run_baselines,
    score_genes_table,
    term_gene_sets,
)
from interpretable_ae.genesets import build_mask
from interpretable_ae.simulate import simulate_counts


@pytest.fixture(scope="module")
def planted() -> tuple[ad.AnnData, str]:
    """300 cells x 200 genes, 12 sets; SET_000 planted (up in the stimulated cells)."""
    adata, sets = simulate_counts(
        n_cells=300, n_genes=200, n_sets=12, set_size=(8, 25), n_planted=1, seed=1
    )
    mask, terms = build_mask(adata.var_names, sets, min_genes=5)
    adata.varm["geneset_mask"], adata.uns["geneset_terms"] = mask, np.asarray(terms, dtype=object)
    return adata, "SET_000"


def scores_for(terms: list[str], order: dict[str, list[str]], replicate: bool = False):
    """A score table in which each model ranks ``terms`` in the given order (first best)."""
    rows = []
    for model, ranked in order.items():
        for rep in (0, 1) if replicate else (0,):
            seq = ranked if rep == 0 else ranked[::-1]
            for i, term in enumerate(seq):
                rows.append({"model": model, "term": term, "kind": "annotated",
                             "accuracy_train": 1.0 - 0.01 * i, "auroc": 0.9, "replicate": rep})  # fmt: skip
            rows.append({"model": model, "term": "dense_0", "kind": "dense",
                         "accuracy_train": 1.0, "auroc": 1.0, "replicate": rep})  # fmt: skip
    table = pd.DataFrame(rows)
    return table if replicate else table.drop(columns="replicate")


def test_gene_ranking_puts_planted_genes_first(planted) -> None:
    adata, term = planted
    ranking = gene_ranking(adata)
    assert ranking.name == "stimulated vs control"
    genes = set(term_gene_sets(adata)[term])
    top = ranking.index[: len(genes)]
    assert len(genes & set(top)) >= 0.8 * len(genes)
    assert ranking.is_monotonic_decreasing
    with pytest.raises(ValueError, match="ranking method"):
        gene_ranking(adata, method="logreg")


def test_gsea_and_score_genes_find_the_planted_term(planted) -> None:
    adata, term = planted
    sets = term_gene_sets(adata)
    gsea = prerank_gsea(gene_ranking(adata), sets, permutations=200, seed=0)
    assert set(gsea["term"]) == set(sets)
    first = gsea.iloc[0]
    assert first["term"] == term and first["gsea_nes"] > 0 and first["gsea_fdr"] < 0.05
    assert gsea["gsea_rank"].tolist() == list(range(1, len(gsea) + 1))
    again = prerank_gsea(gene_ranking(adata), sets, permutations=200, seed=0)
    pd.testing.assert_frame_equal(gsea, again)  # seeded
    cells = score_genes_table(adata, sets, cv_folds=3, seed=0)
    best = cells.iloc[0]
    assert best["term"] == term and best["score_rank"] == 1
    assert best["score_auroc"] > 0.9 and best["score_direction"] == 1
    others = cells[cells["term"] != term]
    assert others["score_auroc"].max() < best["score_auroc"]


def test_model_ranks_among_annotated_factors_and_over_replicates() -> None:
    terms = ["A", "B", "C"]
    ranks = model_term_ranks(scores_for(terms, {"m1": ["A", "B", "C"], "m2": ["C", "A", "B"]}))
    assert ranks.loc["A"].tolist() == [1, 2] and ranks.loc["C"].tolist() == [3, 1]
    replicated = model_term_ranks(scores_for(terms, {"m1": ["A", "B", "C"]}, replicate=True))
    # replicate 0 ranks A first, replicate 1 last: the median is 2
    assert replicated["m1"].tolist() == [2.0, 2.0, 2.0]
    only = model_term_ranks(scores_for(terms, {"m1": terms, "m2": terms}), models=["m2"])
    assert list(only.columns) == ["m2"]


def test_agreement_categories() -> None:
    sets = {t: ["g1", "g2"] for t in ("A", "B", "C", "D")}
    gsea = pd.DataFrame({"term": ["A", "C", "B", "D"], "gsea_nes": 1.0, "gsea_pvalue": 0.1,
                         "gsea_fdr": 0.1, "gsea_rank": [1, 2, 3, 4]})  # fmt: skip
    cells = pd.DataFrame({"term": ["C", "A", "B", "D"], "score_rank": [1, 2, 3, 4]})
    ranks = model_term_ranks(scores_for(list(sets), {"m": ["B", "A", "D", "C"]}))
    table = agreement_table(gsea, cells, ranks, sets, top_n=1).set_index("term")
    assert table.loc["A", "agreement"] == "classical only"  # GSEA 1, model 2
    assert table.loc["B", "agreement"] == "models only"
    assert table.loc["C", "agreement"] == "classical only"
    assert table.loc["D", "agreement"] == ""
    both = agreement_table(gsea, cells, ranks, sets, top_n=2).set_index("term")
    assert both.loc["A", "agreement"] == "both" and both.loc["A", "top_classical"] == 2
    assert list(both.index[:3]) == ["A", "B", "C"]  # terms in a top list first, best rank first
    overlap = overlap_matrix(both.reset_index(), 2)
    assert overlap.loc["gsea", "score_genes"] == 2 and overlap.loc["gsea", "m"] == 1


def test_run_baselines_refuses_scores_of_other_data(planted) -> None:
    adata, _ = planted
    scores = scores_for(["SET_000", "NOT_A_TERM"], {"m": ["SET_000", "NOT_A_TERM"]})
    with pytest.raises(ValueError, match="NOT_A_TERM"):
        run_baselines(adata, scores, permutations=20, cv_folds=3)


def test_script_writes_table_and_figure(tmp_path: Path, planted, monkeypatch) -> None:
    saved = record_saved_figures(monkeypatch)
    adata, term = planted
    prepared = tmp_path / "prepared.h5ad"
    adata.write_h5ad(prepared)
    terms = list(adata.uns["geneset_terms"])
    scores = scores_for(terms, {"ae": terms, "slalom": terms[::-1]})
    scores_path = tmp_path / "scores.tsv"
    scores.to_csv(scores_path, sep="\t", index=False)
    out = {k: str(tmp_path / f"baselines.{k}") for k in ("tsv", "html", "png", "pdf")}
    status = run_as_snakemake(
        "baselines",
        input={"prepared": str(prepared), "scores": str(scores_path)},
        output=out,
        params={
            "dataset": "toy",
            "models": ["ae", "slalom"],
            "labels": {"ae": "AE"},
            "ranking": "t-test",
            "permutations": 100,
            "top_n": 3,
            "cv_folds": 3,
            "seed": 0,
            "control": "",
        },  # fmt: skip
        log=[str(tmp_path / "baselines.log")],
    )
    assert status == 0, (tmp_path / "baselines.log").read_text()
    table = pd.read_csv(out["tsv"], sep="\t").set_index("term")
    assert table.loc[term, "gsea_rank"] == 1 and table.loc[term, "agreement"] == "both"
    assert {"rank_ae", "rank_slalom"} <= set(table.columns)
    assert imread(out["png"]).shape[0] > 300
    # the figure: a row per term in any top 3 (in the table's order), a column per method;
    # every cell shows its rank, coloured where in the top 3
    (fig,) = saved
    ax = fig.axes[0]
    shown = table[table["agreement"].fillna("").astype(str) != ""]
    rows = [t.get_text().replace("\n", " ").split("  [")[0] for t in ax.get_yticklabels()]
    assert rows == list(shown.index) and len(rows) >= 3
    ranks = shown[["gsea_rank", "score_rank", "rank_ae", "rank_slalom"]].to_numpy(dtype=float)
    coloured = np.ma.filled(ax.images[1].get_array().astype(float), np.nan)
    np.testing.assert_array_equal(coloured, np.where(ranks <= 3, ranks, np.nan))
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["–" if np.isnan(r) else f"{r:g}" for r in ranks.ravel()]
