"""Gene-set refinement: kept, gained and lost genes per factor, across replicates."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from matplotlib.image import imread

from helpers.drawn import bars, record_saved_figures
from helpers.script_runner import run_as_snakemake
from iae_pipeline.analyses.refinement import (
    GENE_COLUMNS,
    TERM_COLUMNS,
    refinement_table,
    term_summary,
    top_refined_terms,
    used_genes,
)
from iae_pipeline.contract import make_factor_anndata
from iae_pipeline.fit.autoencoder import fit_autoencoder
from interpretable_ae.genesets import build_mask

GENES = [f"G{i}" for i in range(8)]
TERMS = ["T_A", "T_B"]


@pytest.fixture
def prepared() -> ad.AnnData:
    """8 genes, 2 terms: T_A = G0..G3, T_B = G4..G6 (G7 in no term)."""
    mask = np.zeros((8, 2), dtype=np.float32)
    mask[:4, 0] = 1
    mask[4:7, 1] = 1
    adata = ad.AnnData(
        X=np.zeros((4, 8), dtype=np.float32),
        obs=pd.DataFrame(
            {"condition": ["a", "b", "a", "b"], "cell_type": "x"}, index=[f"c{i}" for i in range(4)]
        ),
        var=pd.DataFrame(index=GENES),
    )
    adata.varm["geneset_mask"] = sp.csr_matrix(mask)
    adata.uns["geneset_terms"] = np.asarray(TERMS, dtype=object)
    return adata


def factors(prepared: ad.AnnData, weights: np.ndarray, active=(True, True, True)) -> ad.AnnData:
    """A contract with factors T_A, T_B, dense_0; ``weights`` genes x 3."""
    return make_factor_anndata(
        loadings=np.zeros((prepared.n_obs, 3)),
        obs=prepared.obs,
        factor_names=[*TERMS, "dense_0"],
        kinds=["annotated", "annotated", "dense"],
        gene_weights=weights,
        gene_names=GENES,
        active=list(active),
        run={"model": "test", "setup": "t", "seed": 0, "seconds": 0.0},
    )


def weights_a() -> np.ndarray:
    w = np.zeros((8, 3))
    w[:, 0] = [1.0, -0.5, 0.0, 0.001, 0.3, 0.0, 0.0, -0.8]  # G2 lost; G4, G7 gained
    w[:, 1] = [0.0, 0.0, 0.0, 0.0, 0.2, 0.2, 0.2, 0.0]  # all kept, nothing gained
    w[:, 2] = 1.0  # dense factors are not refined
    return w


def test_used_genes_threshold_is_relative_to_the_factor() -> None:
    w = np.array([[1.0, 10.0], [0.05, 0.5], [0.0, 0.0]])
    assert used_genes(w, 0.0).tolist() == [[True, True], [True, True], [False, False]]
    assert used_genes(w, 0.1).tolist() == [[True, True], [False, False], [False, False]]
    with pytest.raises(ValueError, match="min_weight"):
        used_genes(w, 1.0)


def test_kept_gained_lost_of_one_run(prepared: ad.AnnData) -> None:
    table = refinement_table([factors(prepared, weights_a())], prepared, min_weight=0.01)
    assert list(table.columns) == list(GENE_COLUMNS)
    assert set(table["term"]) == {"T_A", "T_B"}  # the dense factor is not refined
    a = table[table["term"] == "T_A"].set_index("gene")
    assert a.loc[["G0", "G1"], "status"].tolist() == ["kept", "kept"]
    # G3's weight 0.001 is below 1% of the largest (1.0): lost, as is G2 (exactly zero)
    assert sorted(a.index[a["status"] == "lost"]) == ["G2", "G3"]
    gained = a[a["status"] == "gained"]
    assert gained.index.tolist() == ["G7", "G4"]  # ranked by |weight|: 0.8, then 0.3
    assert gained["median_rank"].tolist() == [2, 4]
    assert gained["mean_weight"].tolist() == pytest.approx([-0.8, 0.3])
    assert not gained["in_annotation"].any() and a.loc["G2", "in_annotation"]
    b = table[table["term"] == "T_B"]
    assert set(b["status"]) == {"kept"} and len(b) == 3
    # with min_weight 0, every non-zero weight counts: G3 is kept
    exact = refinement_table([factors(prepared, weights_a())], prepared, min_weight=0.0)
    assert exact.set_index(["term", "gene"]).loc[("T_A", "G3"), "status"] == "kept"


def test_replicates_count_how_often_a_gene_is_gained(prepared: ad.AnnData) -> None:
    second = weights_a()
    second[7, 0] = 0.0  # G7 not gained in the second replicate
    second[5, 0] = 0.4  # G5 gained only there
    third = weights_a()
    runs = [factors(prepared, w) for w in (weights_a(), second, third)]
    runs.append(factors(prepared, weights_a(), active=(False, True, True)))  # T_A switched off
    table = refinement_table(runs, prepared)
    a = table[table["term"] == "T_A"].set_index("gene")
    assert (a["n_replicates"] == 3).all()  # the run where T_A is off does not count
    assert a.loc["G7", ["count", "fraction"]].tolist() == [2, pytest.approx(2 / 3)]
    assert a.loc["G5", ["count", "fraction"]].tolist() == [1, pytest.approx(1 / 3)]
    assert a.loc["G7", "mean_weight"] == pytest.approx(-1.6 / 3)
    assert a.loc["G4", "count"] == 3
    # most frequent first
    gained = a[a["status"] == "gained"].index.tolist()
    assert gained.index("G4") < gained.index("G7") < gained.index("G5")
    summary = term_summary(table, runs).set_index("term")
    assert list(summary.reset_index().columns) == list(TERM_COLUMNS)
    assert summary.loc["T_A", "n_gained"] == pytest.approx((2 + 2 + 2) / 3)
    assert summary.loc["T_A", "top_gained"].startswith("G4 (100%)")
    assert "G2 (100%)" in summary.loc["T_A", "lost"]


def test_switched_off_everywhere_and_foreign_factors(prepared: ad.AnnData) -> None:
    off = refinement_table([factors(prepared, weights_a(), active=(False, False, True))], prepared)
    assert off.empty and list(off.columns) == list(GENE_COLUMNS)
    other = prepared.copy()
    other.uns["geneset_terms"] = np.asarray(["T_X", "T_B"], dtype=object)
    with pytest.raises(ValueError, match="'T_A' is not a term of the prepared data"):
        refinement_table([factors(prepared, weights_a())], other)
    fewer = prepared[:, :6].copy()
    with pytest.raises(ValueError, match="not in the prepared data"):
        refinement_table([factors(prepared, weights_a())], fewer)


def test_top_terms_for_the_figure(prepared: ad.AnnData) -> None:
    runs = [factors(prepared, weights_a())]
    summary = term_summary(refinement_table(runs, prepared), runs)
    assert top_refined_terms(summary, n=1) == (["T_A"], [])  # larger weight norm
    assert top_refined_terms(summary, ["T_B", "T_Z"]) == (["T_B"], ["T_Z"])


def test_autoencoder_gains_are_its_nonzero_weights_outside_the_set(small_data) -> None:
    """On a real fit with min_weight 0, 'gained' is exactly what the estimator's
    term_genes calls gained, and 'kept' + 'lost' is the annotation."""
    adata, gene_sets = small_data
    mask, terms = build_mask(adata.var_names, gene_sets, min_genes=3)
    adata.varm["geneset_mask"], adata.uns["geneset_terms"] = mask, terms
    adata.obs["cell_type"] = "x"
    ae, contract = fit_autoencoder(adata, {"epochs": 10}, seed=0, progress=False)
    table = refinement_table([contract], adata, min_weight=0.0)
    for term in ae.active_terms():
        expected = ae.term_genes(term)
        part = table[table["term"] == term].set_index("gene")
        assert set(part.index[part["status"] == "gained"]) == set(
            expected.index[expected["gained"]]
        )
        assert set(part.index[part["in_annotation"]]) == set(
            expected.index[expected["in_annotation"]]
        )


def test_script_writes_tables_and_figure(tmp_path: Path, prepared: ad.AnnData, monkeypatch) -> None:
    saved = record_saved_figures(monkeypatch)
    prepared_path = tmp_path / "prepared.h5ad"
    prepared.write_h5ad(prepared_path)
    paths = []
    for i, w in enumerate((weights_a(), weights_a() * 2)):
        paths.append(tmp_path / f"rep{i}.h5ad")
        factors(prepared, w).write_h5ad(paths[-1])
    out = {
        k: str(tmp_path / name)
        for k, name in (("genes", "refinement.tsv"), ("terms", "terms.tsv"),
                        ("html", "terms.html"), ("png", "fig.png"), ("pdf", "fig.pdf"))
    }  # fmt: skip
    status = run_as_snakemake(
        "refinement",
        input={"prepared": str(prepared_path), "factors": [str(p) for p in paths]},
        output=out,
        params={
            "model": "ae",
            "label": "AE",
            "dataset": "toy",
            "min_weight": 0.01,
            "terms": [],
            "top_terms": 6,
            "top_genes": 12,
        },  # fmt: skip
        log=[str(tmp_path / "refinement.log")],
    )
    assert status == 0, (tmp_path / "refinement.log").read_text()
    genes = pd.read_csv(out["genes"], sep="\t")
    assert set(genes["n_replicates"]) == {2}
    assert "G7" in genes.loc[genes["status"] == "gained", "gene"].tolist()
    assert "<table>" in Path(out["html"]).read_text()
    assert imread(out["png"]).shape[0] > 300
    # the figure: a panel per term, a bar per gene at its mean weight over the replicates,
    # one colour for kept genes and another for gained ones
    (fig,) = saved
    panels = [ax for ax in fig.axes if bars(ax)]
    assert sorted(ax.get_title().split("\n")[0] for ax in panels) == TERMS
    colour_of = {}
    for ax in panels:
        part = genes[genes["term"] == ax.get_title().split("\n")[0]].set_index("gene")
        names = [t.get_text().split(" (")[0] for t in ax.get_yticklabels()]
        drawn = sorted(bars(ax), key=lambda b: b.get_y())
        assert len(drawn) == len(names) == (part["status"] != "lost").sum()
        for bar, gene in zip(drawn, names, strict=True):
            assert bar.get_width() == pytest.approx(part.loc[gene, "mean_weight"])
            colour_of.setdefault(part.loc[gene, "status"], set()).add(bar.get_facecolor())
    assert sorted(colour_of) == ["gained", "kept"] and all(len(c) == 1 for c in colour_of.values())
    assert colour_of["gained"] != colour_of["kept"]
    assert Path(out["pdf"]).read_bytes().startswith(b"%PDF")
