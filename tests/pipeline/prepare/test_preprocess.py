"""Preprocessing: each step on its own, the demo end to end, mouse data, bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.script_runner import run_as_snakemake
from iae_pipeline.contract import validate_prepared
from iae_pipeline.prepare.datasets import DatasetError
from iae_pipeline.prepare.preprocess import (
    check_overlap,
    keep_genes,
    load_gene_sets,
    normalize_log,
    prepare,
    prepare_from_config,
)
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import GeneSetError

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
    assert out.uns["prepare"]["n_genes_hvg"] == 50 and set(out.var_names) <= annotated
    assert sp.isspmatrix_csr(out.X) and out.X.dtype == np.float32  # prepared X stays sparse
    mask = out.varm[MASK_KEY]
    assert sp.issparse(mask) and mask.shape == (out.n_vars, len(out.uns[TERMS_KEY]))
    sizes = np.asarray(mask.sum(axis=0)).ravel()
    assert sizes.min() > 3 and sizes.max() < 8  # both bounds exclusive, as intercode's
    # every kept gene is in a kept term (prune_genes), and none of the HVGs in a kept
    # term was lost
    assert np.asarray(mask.sum(axis=1)).ravel().min() >= 1
    assert out.n_vars + out.uns["prepare"]["n_genes_pruned"] == 50
    for j, term in enumerate(out.uns[TERMS_KEY]):
        members = set(out.var_names[mask[:, j].toarray().ravel() == 1])
        assert members == set(sets[term]) & set(out.var_names)
    assert out.obs["condition"].cat.categories.tolist() == ["a", "b"]
    assert out.uns["prepare"]["n_genes_annotated"] == len(annotated & set(adata.var_names))
    kept = prepare(
        adata, sets, data_type="counts", n_top_genes=50, min_genes=3, max_genes=8,
        prune_genes=False,
    )  # fmt: skip
    assert kept.n_vars == 50 and kept.uns["prepare"]["n_genes_pruned"] == 0
    assert list(kept.uns[TERMS_KEY]) == list(out.uns[TERMS_KEY])


def test_min_genes_counts_as_the_authors_add_annotations():
    """intercode's add_annotations(min_genes=13) keeps a term with 14 genes in the data
    and drops one with 13 (I.sum(0) > min_genes); max_genes likewise (< max_genes)."""
    adata, _ = counts_data(n_genes=60)
    genes = list(adata.var_names)
    sets = {"T12": genes[:12], "T13": genes[:13], "T14": genes[:14], "T20": genes[20:40]}
    kw = dict(data_type="counts", n_top_genes=None)
    assert list(prepare(adata, sets, min_genes=13, **kw).uns[TERMS_KEY]) == ["T14", "T20"]
    assert list(prepare(adata, sets, min_genes=12, **kw).uns[TERMS_KEY]) == ["T13", "T14", "T20"]
    out = prepare(adata, sets, min_genes=12, max_genes=20, **kw)
    assert list(out.uns[TERMS_KEY]) == ["T13", "T14"] and out.n_vars == 14
    with pytest.raises(DatasetError, match="no term can have more than min_genes=13"):
        prepare(adata, sets, min_genes=13, max_genes=14, **kw)


def test_centred_input_is_kept_and_genes_chosen_by_variance(tmp_path, caplog):
    """Centred log-normalised data (the authors' adata.X -= adata.X.mean(0)) are
    accepted with one log line, not normalised again; HVGs by variance."""
    adata, sets = counts_data()
    normalize_log(adata)
    X = adata.X.toarray()
    adata.X = X - X.mean(axis=0)
    adata.obs["stim"] = adata.obs["condition"]
    path = tmp_path / "centred.h5ad"
    adata.write_h5ad(path)
    dataset = {
        "name": "centred", "source": "h5ad", "species": "human", "data_type": "auto",
        "condition_key": "stim", "cell_type_key": "cell_type",
        "preprocess": {"n_top_genes": 40, "min_genes": 2, "min_overlap": 0.2},
    }  # fmt: skip
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("".join(f"{t}\tx\t" + "\t".join(g) + "\n" for t, g in sets.items()))
    with caplog.at_level(logging.INFO):
        out = prepare_from_config(
            dataset, {"h5ad": str(path)}, [gmt], [{"name": "s"}], None, 0, tmp_path / "o.h5ad"
        )
    assert out.uns["prepare"]["data_type"] == "centred"
    assert "is centred (every gene's mean is 0)" in caplog.text
    annotated = adata[:, adata.var_names.isin({g for v in sets.values() for g in v})]
    var = annotated.X.var(axis=0)
    top = set(annotated.var_names[np.argsort(-var)[:40]])
    assert set(out.var_names) <= top and out.uns["prepare"]["n_genes_hvg"] == 40
    np.testing.assert_allclose(out.X.toarray(), annotated[:, out.var_names].X, atol=1e-6)


def test_subsample_is_seeded():
    adata, sets = counts_data()
    kw = dict(data_type="counts", n_top_genes=None, subsample=100, min_genes=2)
    a = prepare(adata, sets, seed=1, **kw)
    b = prepare(adata, sets, seed=1, **kw)
    c = prepare(adata, sets, seed=2, **kw)
    assert a.n_obs == 100 and list(a.obs_names) == list(b.obs_names)
    assert list(a.obs_names) != list(c.obs_names)


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


def test_mouse_h5ad_through_the_ortholog_table(real, buettner_h5ad, tmp_path, caplog):
    dataset = {
        "name": "buettner", "source": "h5ad", "species": "mouse", "data_type": "auto",
        "condition_key": "stage", "condition_positive": ["G2M"], "cell_type_key": "line",
        "preprocess": {"n_top_genes": 500, "min_genes": 10, "min_overlap": 0.2},
    }  # fmt: skip
    gmt = real("genesets/c2.cp.reactome.v4.0.symbols.gmt")
    table = real("genesets/Ensembl105_Human2Mouse_Genes.csv")
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
    assert prepared.uns["prepare"]["n_genes_hvg"] == 500 and prepared.uns["prepare"]["n_terms"] > 50
    # the genes in no term with more than 10 of them are dropped
    assert prepared.n_vars + info["n_genes_pruned"] == 500 and info["n_genes_pruned"] > 0
    assert np.asarray(prepared.varm[MASK_KEY].sum(axis=1)).ravel().min() >= 1
    assert all(g[0].isupper() and not g.isupper() for g in prepared.var_names[:20])
    # as human data the same file is refused: wrong species
    with pytest.raises(GeneSetError, match="different species or symbols"):
        prepare_from_config(
            {**dataset, "species": "human"}, {"h5ad": str(buettner_h5ad)},
            [gmt], [{"name": "r4"}], None, 0, tmp_path / "human.h5ad",
        )  # fmt: skip
    assert not (tmp_path / "human.h5ad").exists()


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


def test_load_gene_sets_order_and_prefixes(real):
    hallmark = real("genesets/h.all.v7.5.1.symbols.gmt")
    sets = load_gene_sets(
        [hallmark, real("genesets/ReactomePathways_2024-09-18.gmt")],
        [{"name": "h"}, {"name": "reactome", "drop_small_sets": True}],
    )
    assert list(sets)[0].startswith("HALLMARK_") and "Interferon Signaling" in sets
    with pytest.raises(GeneSetError, match="2 GMT file"):
        load_gene_sets([hallmark] * 2, [{"name": "h"}])


@pytest.mark.parametrize("chunk_rows", [1, 7, 16_384])
def test_keep_genes_compacts_csr_in_place_as_slicing_would(chunk_rows):
    """The same matrix as anndata's slice (empty cells, the first and last gene dropped),
    in the original's buffers: no second copy of the expression."""
    rng = np.random.default_rng(0)
    X = sp.random(50, 12, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    X[[3, 17, 49]] = 0  # cells without any value left
    X.eliminate_zeros()
    adata = ad.AnnData(
        X, obs=pd.DataFrame({"c": ["a", "b"] * 25}, index=[f"c{i}" for i in range(50)])
    )
    adata.var_names = [f"G{i}" for i in range(12)]
    keep = np.ones(12, dtype=bool)
    keep[[0, 4, 5, 11]] = False
    expected = adata[:, keep].copy()
    data = adata.X.data
    out = keep_genes(adata, keep, chunk_rows=chunk_rows)
    assert list(out.var_names) == list(expected.var_names) and out.obs.equals(expected.obs)
    assert out.X.format == "csr" and out.X.shape == expected.X.shape
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(out.X, part), getattr(expected.X, part))
    assert np.shares_memory(out.X.data, data)
    assert keep_genes(out, np.ones(8, dtype=bool)) is out


def test_prepare_without_a_copy_gives_the_same_prepared_data():
    """``copy=False`` (the workflow's prepare) reuses the loaded matrix and changes nothing
    in the result."""
    adata, sets = counts_data()
    adata.X = sp.csr_matrix(adata.X)
    kw = {"data_type": "counts", "n_top_genes": 50, "min_genes": 3, "max_genes": 8}
    copied = prepare(adata.copy(), sets, **kw)
    reused = prepare(adata, sets, copy=False, **kw)
    assert (copied.X != reused.X).nnz == 0 and list(copied.var_names) == list(reused.var_names)
    assert (copied.varm[MASK_KEY] != reused.varm[MASK_KEY]).nnz == 0
