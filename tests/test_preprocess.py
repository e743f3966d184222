"""Preprocessing: each step on its own, the demo end to end, mouse data, bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from interpretable_ae.contract import MASK_KEY, TERMS_KEY, validate_prepared
from interpretable_ae.datasets import DatasetError
from interpretable_ae.genesets import GeneSetError
from interpretable_ae.orthologs import read_orthologs, translate_gene_sets
from interpretable_ae.datasets import load_pbmc68k_demo
from interpretable_ae.preprocess import (
    check_overlap,
    load_gene_sets,
    normalize_log,
    prepare,
    prepare_from_config,
)
from interpretable_ae.simulate import plant_stimulation, simulate_counts
from script_runner import run_as_snakemake

DEMO_TERM = "HALLMARK_INTERFERON_GAMMA_RESPONSE"


def counts_data(n_cells: int = 300, n_genes: int = 200, seed: int = 0):
    """Poisson counts with cell types and a two-class condition, plus random gene sets."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(rng.gamma(0.5, 2.0, size=n_genes), size=(n_cells, n_genes)).astype(np.float32)
    genes = [f"G{i}" for i in range(n_genes)]
    obs = pd.DataFrame(
        {
            "condition": rng.choice(["a", "b"], size=n_cells),
            "cell_type": rng.choice(["t1", "t2"], size=n_cells),
        },
        index=[f"c{i}" for i in range(n_cells)],
    )
    sets = {f"S{k}": list(rng.choice(genes, size=20, replace=False)) for k in range(15)}
    return ad.AnnData(X=sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes)), sets


def test_normalize_log_gives_target_sum():
    adata, _ = counts_data()
    raw = adata.X.toarray()
    normalize_log(adata, target_sum=1e4)
    totals = np.expm1(adata.X.toarray()).sum(axis=1)
    np.testing.assert_allclose(totals[raw.sum(axis=1) > 0], 1e4, rtol=1e-4)


def test_prepare_steps_from_counts():
    adata, sets = counts_data()
    out = prepare(adata, sets, data_type="counts", n_top_genes=50, min_genes=3, max_genes=8)
    validate_prepared(out)
    annotated = {g for genes in sets.values() for g in genes}
    assert out.n_vars == 50 and set(out.var_names) <= annotated
    assert out.X.dtype == np.float32 and isinstance(out.X, np.ndarray)
    mask = out.varm[MASK_KEY]
    assert sp.issparse(mask) and mask.shape == (50, len(out.uns[TERMS_KEY]))
    sizes = np.asarray(mask.sum(axis=0)).ravel()
    assert sizes.min() >= 3 and sizes.max() <= 8
    for j, term in enumerate(out.uns[TERMS_KEY]):
        members = set(out.var_names[mask[:, j].toarray().ravel() == 1])
        assert members == set(sets[term]) & set(out.var_names)
    assert out.obs["condition"].cat.categories.tolist() == ["a", "b"]
    assert out.uns["prepare"]["n_genes_annotated"] == len(annotated & set(adata.var_names))


def test_subsample_is_seeded():
    adata, sets = counts_data()
    kw = dict(data_type="counts", n_top_genes=None, subsample=100, min_genes=2)
    a = prepare(adata, sets, seed=1, **kw)
    b = prepare(adata, sets, seed=1, **kw)
    c = prepare(adata, sets, seed=2, **kw)
    assert a.n_obs == 100 and list(a.obs_names) == list(b.obs_names)
    assert list(a.obs_names) != list(c.obs_names)


def test_subsample_is_independent_of_a_simulation_with_the_same_seed(shared_data):
    """Regression: one seed for both once picked exactly the planted (stimulated) cells."""
    sets = {"IFNG": ["STAT1", "IRF1", "GBP1", "CXCL10", "IDO1", "ISG15", "IFITM3", "HLA-A"]}
    adata = load_pbmc68k_demo()
    sim = {"terms": ["IFNG"], "strength": 1.0, "fraction": 0.5, "seed": 0}
    out = prepare(adata, sets, data_type="lognorm", n_top_genes=None, subsample=350,
                  min_genes=2, simulation=sim, seed=0)  # fmt: skip
    counts = out.obs["condition"].value_counts()
    assert out.n_obs == 350 and counts.min() > 120, counts.to_dict()


def test_one_class_condition_and_missing_obs_key():
    adata, sets = counts_data()
    adata.obs["condition"] = "a"
    with pytest.raises(DatasetError, match=r"obs\['condition'\] has 1 class\(es\) \['a'\]"):
        prepare(adata, sets, data_type="counts")
    del adata.obs["cell_type"]
    with pytest.raises(DatasetError, match=r"obs\['cell_type'\] is missing"):
        prepare(adata, sets, data_type="counts")


def test_wrong_species_names_the_overlap_and_the_fix():
    adata, sets = counts_data()
    adata.var_names = [g.lower() for g in adata.var_names]
    with pytest.raises(GeneSetError, match=r"only 0 of the 200 data genes .* set the dataset's"):
        check_overlap(adata.var_names, sets, 0.2, "toy")


def test_simulation_on_real_demo_terms(shared_data, tmp_path):
    """The demo config: pbmc68k_reduced, MSigDB 7.5.1 hallmark + Reactome, min_genes 20."""
    gmts = [
        shared_data / "genesets" / "h.all.v7.5.1.symbols.gmt",
        shared_data / "genesets" / "c2.cp.reactome.v7.5.1.symbols.gmt",
    ]
    dataset = {
        "name": "demo",
        "source": "pbmc68k_demo",
        "species": "human",
        "simulation": {"terms": [DEMO_TERM], "strength": 1.0, "fraction": 0.5, "seed": 0},
        "preprocess": {"target_sum": 10000, "n_top_genes": 1000, "subsample": None,
                       "min_genes": 20, "max_genes": None, "min_overlap": 0.2},
    }  # fmt: skip
    specs = [{"name": "hallmark", "prefixes": ["HALLMARK_"]}, {"name": "reactome"}]
    out_path = tmp_path / "demo" / "prepared.h5ad"
    prepare_from_config(dataset, {}, gmts, specs, None, 0, out_path)
    out = ad.read_h5ad(out_path)
    validate_prepared(out)
    terms = list(out.uns[TERMS_KEY])
    assert out.shape == (700, 535) and 30 <= len(terms) <= 60
    assert DEMO_TERM in terms
    assert out.obs["condition"].value_counts().to_dict() == {"control": 350, "stimulated": 350}
    planted = out.var_names[out.varm[MASK_KEY][:, terms.index(DEMO_TERM)].toarray().ravel() == 1]
    stim = (out.obs["condition"] == "stimulated").to_numpy()
    X = out.X
    assert (
        X[stim][:, out.var_names.isin(planted)].mean()
        - X[~stim][:, out.var_names.isin(planted)].mean()
    ) > 0.3
    assert (
        abs(
            X[stim][:, ~out.var_names.isin(planted)].mean()
            - X[~stim][:, ~out.var_names.isin(planted)].mean()
        )
        < 0.05
    )
    assert [p.name for p in out_path.parent.iterdir()] == ["prepared.h5ad"]


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
    # mean shift = strength x E[effect] x E[activity] x detection = strength x 0.8
    on_set = shift[stim][:, out.var_names.isin(genes)].mean()
    on_extra = shift[stim][:, out.var_names.isin(extra)].mean()
    assert on_set == pytest.approx(1.6, rel=0.25) and on_extra == pytest.approx(0.4, rel=0.25)
    # seeded: the same seed draws the same extra genes, another seed others
    again = plant_stimulation(adata, genes, strength=2.0, seed=5, extra_genes=30)
    other = plant_stimulation(adata, genes, strength=2.0, seed=6, extra_genes=30)
    assert list(again.uns["simulation"]["genes_extra"]) == extra
    assert list(other.uns["simulation"]["genes_extra"]) != extra
    with pytest.raises(ValueError, match=r"extra_genes must be between 0 and \d+ .* lower simul"):
        plant_stimulation(adata, genes, seed=5, extra_genes=adata.n_vars)


def test_simulation_term_must_exist(shared_data):
    adata, sets = simulate_counts(n_cells=100, n_genes=100, n_sets=5, seed=0)
    del adata.obs["condition"]
    with pytest.raises(GeneSetError, match=r"simulation terms \['HALLMARK_NOPE'\] not in"):
        prepare(adata, sets, data_type="lognorm", simulation={"terms": ["HALLMARK_NOPE"]})


def test_mouse_h5ad_through_the_ortholog_table(shared_data, buettner_h5ad, tmp_path, caplog):
    dataset = {
        "name": "buettner", "source": "h5ad", "species": "mouse", "data_type": "auto",
        "condition_key": "stage", "condition_positive": ["G2M"], "cell_type_key": "line",
        "preprocess": {"n_top_genes": 500, "min_genes": 10, "min_overlap": 0.2},
    }  # fmt: skip
    gmt = shared_data / "genesets" / "c2.cp.reactome.v4.0.symbols.gmt"
    table = shared_data / "genesets" / "Ensembl105_Human2Mouse_Genes.csv"
    out = tmp_path / "buettner.h5ad"
    with caplog.at_level(logging.INFO):
        prepared = prepare_from_config(
            dataset, {"h5ad": str(buettner_h5ad)}, [gmt], [{"name": "r4"}], table, 0, out
        )
    assert "data genes have a human ortholog" in caplog.text
    assert "X looks like lognorm" in caplog.text
    info = prepared.uns["prepare"]
    assert info["orthologs"] == "table" and info["data_type"] == "lognorm"
    assert 0 < info["data_genes_mapped"] <= info["data_genes"] == 6635
    assert prepared.n_vars == 500 and prepared.uns["prepare"]["n_terms"] > 50
    assert all(g[0].isupper() and not g.isupper() for g in prepared.var_names[:20])
    # as human data the same file is refused: wrong species
    with pytest.raises(GeneSetError, match="different species or symbols"):
        prepare_from_config(
            {**dataset, "species": "human"}, {"h5ad": str(buettner_h5ad)},
            [gmt], [{"name": "r4"}], None, 0, tmp_path / "human.h5ad",
        )  # fmt: skip
    assert not (tmp_path / "human.h5ad").exists()


def test_ortholog_table_real(shared_data):
    table = read_orthologs(shared_data / "genesets" / "Ensembl105_Human2Mouse_Genes.csv")
    assert list(table.columns) == ["human", "mouse"] and len(table) > 20_000
    sets, stats = translate_gene_sets({"T": ["STAT1", "IRF1", "NOT_A_GENE"]}, table)
    assert {"Stat1", "Irf1"} <= set(sets["T"]) and stats["set_genes_mapped"] == 2


def _run_prepare(tmp_path, dataset, inputs, specs) -> tuple[int, Path, Path]:
    out, log = tmp_path / "results" / "prepared.h5ad", tmp_path / "prepare.log"
    code = run_as_snakemake(
        "prepare",
        input=inputs,
        output={"prepared": str(out)},
        log={"log": str(log)},
        params={"dataset": dataset, "genesets": specs, "seed": 0},
    )
    return code, out, log


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("blank_line", "blank line"),
        ("missing_key", "obs has no key 'phase' (condition_key)"),
        ("one_class", "has 1 class(es) ['mESC']"),
        ("wrong_species", "different species or symbols"),
    ],
)
def test_prepare_script_one_line_error_and_no_output(buettner_h5ad, tmp_path, problem, message):
    gmt = tmp_path / "sets.gmt"
    lines = ["SET_A\tx\tStat1\tIrf1\tCdk1", "SET_B\tx\tCcnb1\tCdk1\tTop2a"]
    if problem == "blank_line":
        lines.insert(1, "")
    if problem == "wrong_species":
        lines = [ln.upper() for ln in lines]
    gmt.write_text("\n".join(lines) + "\n")
    dataset = {
        "name": "mine", "source": "h5ad", "species": "human", "data_type": "auto",
        "condition_key": "phase" if problem == "missing_key" else "stage",
        "condition_positive": ["G2M"], "cell_type_key": "line",
        "preprocess": {"min_genes": 2, "min_overlap": 0.2},
    }  # fmt: skip
    if problem == "one_class":
        dataset.update(condition_key="line", condition_positive=None)
    inputs = {"h5ad": str(buettner_h5ad), "genesets": [str(gmt)]}
    code, out, log = _run_prepare(tmp_path, dataset, inputs, [{"name": "mine"}])
    errors = [ln for ln in log.read_text().splitlines() if " ERROR " in ln]
    assert code == 1 and not out.exists(), log.read_text()
    assert len(errors) == 1 and message in errors[0]
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_load_gene_sets_order_and_prefixes(shared_data):
    g = shared_data / "genesets"
    sets = load_gene_sets(
        [g / "h.all.v7.5.1.symbols.gmt", g / "ReactomePathways_2024-09-18.gmt"],
        [{"name": "h"}, {"name": "reactome", "drop_small_sets": True}],
    )
    assert list(sets)[0].startswith("HALLMARK_") and "Interferon Signaling" in sets
    with pytest.raises(GeneSetError, match="2 GMT file"):
        load_gene_sets([g / "h.all.v7.5.1.symbols.gmt"] * 2, [{"name": "h"}])
