"""Factor scoring: univariate logistic regression of the condition on each factor."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers.script_runner import call_main
from iae_pipeline.contract import make_factor_anndata
from iae_pipeline.scoring import SCORE_COLUMNS, read_scores, score_factors, score_runs
from interpretable_ae.genesets import build_mask
from interpretable_ae.simulate import simulate_counts


def mean_expression_model(adata: ad.AnnData, gene_sets: dict, model: str) -> ad.AnnData:
    """A stand-in "model": each annotated factor is the mean expression of its genes."""
    mask, terms = build_mask(adata.var_names, gene_sets, min_genes=5)
    weights = mask.toarray()
    loadings = np.asarray(adata.X) @ weights / weights.sum(axis=0)
    return make_factor_anndata(
        loadings,
        adata.obs,
        terms,
        ["annotated"] * len(terms),
        weights,
        adata.var_names,
        np.ones(len(terms), bool),
        {"model": model, "setup": "test", "seed": 0, "seconds": 0.0},
    )


@pytest.fixture(scope="module")
def planted() -> tuple[ad.AnnData, list[str]]:
    adata, sets = simulate_counts(
        n_cells=240, n_genes=200, n_sets=10, set_size=(10, 20), n_planted=2, strength=1.0, seed=3
    )
    return mean_expression_model(adata, sets, "mean"), adata.uns["simulation"]["terms"]


def test_planted_terms_rank_first(planted):
    factors, truth = planted
    table = score_runs({"mean": factors}, "sim", cv_folds=3, seed=0)
    assert list(table.columns) == list(SCORE_COLUMNS)
    assert len(table) == factors.n_vars
    for col in ("accuracy_train", "accuracy_cv", "auroc", "accuracy_chance"):
        assert table[col].between(0, 1).all(), col
    top = table.sort_values("rank")["term"].head(len(truth))
    assert set(top) == set(truth)
    hits = table.set_index("term").loc[truth]
    others = table[~table["term"].isin(truth)]
    assert (hits["accuracy_cv"] > 0.8).all() and (hits["auroc"] > 0.85).all()
    assert others["accuracy_train"].median() < 0.7
    assert sorted(table["rank"]) == list(range(1, len(table) + 1))


def test_scores_are_seeded_and_shuffled_labels_give_chance(planted):
    factors, _ = planted
    a = score_factors(factors, cv_folds=3, seed=1)
    b = score_factors(factors, cv_folds=3, seed=1)
    pd.testing.assert_frame_equal(a, b)
    shuffled = factors.copy()
    rng = np.random.default_rng(0)
    shuffled.obs["condition"] = rng.permutation(shuffled.obs["condition"].to_numpy())
    null = score_factors(shuffled, cv_folds=3, seed=1)
    assert null["auroc"].between(0.3, 0.7).all()
    assert null["accuracy_cv"].median() < 0.6


def test_constant_factor_scores_chance(planted):
    factors, _ = planted
    off = factors.copy()
    off.X[:, 0] = 0.0
    row = score_factors(off, cv_folds=3).iloc[0]
    assert row["accuracy_train"] == pytest.approx(row["accuracy_chance"])
    assert row["auroc"] == pytest.approx(0.5)


def test_three_level_condition(planted):
    factors, truth = planted
    multi = factors.copy()
    stim = multi.obs["condition"].astype(str).to_numpy() == "stimulated"
    levels = np.where(stim, np.where(np.arange(multi.n_obs) % 2 == 0, "mild", "severe"), "healthy")
    multi.obs["condition"] = pd.Categorical(levels)
    table = score_factors(multi, cv_folds=3)
    assert table["auroc"].between(0, 1).all()
    assert table.set_index("term").loc[truth, "auroc"].min() > 0.7
    assert table["accuracy_chance"].iloc[0] == pytest.approx((~stim).mean())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.obs.__setitem__("condition", "x"), "single level"),
        (lambda a: a.obs.__setitem__("condition", ["a"] * (a.n_obs - 2) + ["b"] * 2), "fewer"),
        (lambda a: a.X.__setitem__((0, 0), np.nan), "NaN"),
        (lambda a: a.obs.drop(columns="condition", inplace=True), "condition"),
    ],
)
def test_bad_input_raises_value_error(planted, edit, message):
    bad = planted[0].copy()
    edit(bad)
    with pytest.raises(ValueError, match=message):
        score_factors(bad, cv_folds=3)


def test_score_script_writes_tidy_tsv(planted, tmp_path):
    factors, truth = planted
    paths = []
    for model in ("ae", "slalom"):
        path = tmp_path / f"{model}.h5ad"
        factors.write_h5ad(path)
        paths.append(str(path))
    out = tmp_path / "scores.tsv"
    call_main(
        "score",
        input={"factors": paths},
        params={"dataset": "sim", "models": ["ae", "slalom"], "cv_folds": 3, "seed": 0},
        output={"scores": str(out)},
    )
    table = read_scores(str(out))
    assert len(table) == 2 * factors.n_vars
    assert set(table["model"]) == {"ae", "slalom"} and set(table["dataset"]) == {"sim"}
    assert table["active"].dtype == bool
    best = table.loc[table.groupby("model")["accuracy_train"].idxmax(), "term"]
    assert set(best) <= set(truth)


def test_score_script_rejects_misaligned_models(planted, tmp_path):
    path = tmp_path / "ae.h5ad"
    planted[0].write_h5ad(path)
    with pytest.raises(ValueError, match="aligned"):
        call_main(
            "score",
            input={"factors": [str(path)]},
            params={"dataset": "sim", "models": ["ae", "slalom"], "cv_folds": 3, "seed": 0},
            output={"scores": str(tmp_path / "s.tsv")},
        )


def test_unreadable_factor_file_names_the_file(tmp_path):
    from iae_pipeline.scoring import read_factors

    bad = tmp_path / "factors.h5ad"
    bad.write_text("not hdf5")
    with pytest.raises(ValueError, match="factors.h5ad"):
        read_factors(str(bad))
