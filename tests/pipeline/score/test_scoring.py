"""Factor scoring: univariate logistic regression of the condition on each factor, per
replicate, and the summary over replicates."""

from __future__ import annotations

import re
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from helpers.script_runner import call_main
from iae_pipeline.contract import make_factor_anndata
from iae_pipeline.score.scoring import (
    ROW_BLOCK_ELEMENTS,
    SCORE_COLUMNS,
    SUMMARY_COLUMNS,
    _newton_terms,
    auroc_columns,
    combine_replicates,
    condition_labels,
    fit_logistic_1d,
    read_scores,
    read_summary,
    score_binary,
    score_factor,
    score_factors,
    score_replicate,
    score_runs,
    standardise,
    summarise_scores,
)
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


def planted_data() -> tuple[ad.AnnData, dict]:
    return simulate_counts(
        n_cells=240, n_genes=200, n_sets=10, set_size=(10, 20), n_planted=2, strength=1.0, seed=3
    )


@pytest.fixture(scope="module")
def planted() -> tuple[ad.AnnData, list[str]]:
    adata, sets = planted_data()
    return mean_expression_model(adata, sets, "mean"), adata.uns["simulation"]["terms"]


@pytest.fixture(scope="module")
def planted_prepared(tmp_path_factory) -> str:
    """The planted cells as prepared data (the scores' response shares read them)."""
    adata, sets = planted_data()
    mask, terms = build_mask(adata.var_names, sets, min_genes=5)
    adata.varm["geneset_mask"], adata.uns["geneset_terms"] = mask, np.asarray(terms, dtype=object)
    path = tmp_path_factory.mktemp("prepared") / "prepared.h5ad"
    adata.write_h5ad(path)
    return str(path)


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
    # under the null an AUROC is 0.5 with standard error sqrt((n1 + n2 + 1) / (12 n1 n2))
    # (Mann-Whitney), an accuracy 0.5 with sqrt(0.25 / n); out-of-fold predictions only bias
    # them down (a fold's fit leans away from its held-out cells), so the bound is one-sided:
    # above chance by less than the one-sided bound at a family-wise 0.1 % (Bonferroni)
    n1 = int((shuffled.obs["condition"] == "stimulated").sum())
    n2 = shuffled.n_obs - n1
    z = stats.norm.isf(0.001 / len(null))
    assert null["auroc"].max() < 0.5 + z * np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    assert null["accuracy_cv"].max() < 0.5 + z * np.sqrt(0.25 / shuffled.n_obs)
    # 400 factors of pure noise: independent AUROCs, whose mean is at most 0.5 within its
    # one-sided 0.1 % bound (a leak of the labels into the held-out scores, e.g. scoring the
    # fit on all cells, lifts every AUROC to 0.5 + |AUROC - 0.5|: the mean to ~0.53)
    noise = rng.normal(size=(factors.n_obs, 400))
    names = [f"noise_{i}" for i in range(400)]
    run = {"model": "noise", "setup": "test", "seed": 0, "seconds": 0.0}
    pure = make_factor_anndata(
        noise, factors.obs, names, ["dense"] * 400, np.ones((3, 400)), ["a", "b", "c"],
        np.ones(400, bool), run,
    )  # fmt: skip
    auroc = score_factors(pure, cv_folds=3, seed=1)["auroc"]
    se = np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    assert auroc.mean() < 0.5 + stats.norm.isf(0.001) * se / np.sqrt(len(auroc)), auroc.mean()


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


def sklearn_reference(x: np.ndarray, y: np.ndarray, cv: StratifiedKFold, C: float = 1.0):
    """Coefficients and scores of one factor with scikit-learn, solved to 1e-12, on the
    factor standardised here (not by the code under test)."""
    clf = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    X = ((x - x.mean()) / x.std())[:, None]
    clf.fit(X, y)
    coef = (clf.intercept_[0], clf.coef_[0, 0])
    acc_train = accuracy_score(y, clf.predict(X))
    proba = cross_val_predict(clf, X, y, cv=cv, method="predict_proba")
    return coef, (acc_train, accuracy_score(y, proba.argmax(axis=1)), roc_auc_score(y, proba[:, 1]))


def test_batched_newton_matches_scikit_learn_at_kang_size():
    """13,500 cells (Kang / Macosko size) x factors from useless to separable, imbalanced."""
    rng = np.random.default_rng(7)
    n = 13_500
    y = (rng.random(n) < 0.3).astype(int)
    shifts = [0.0, 0.05, 0.3, 1.0, 2.5]
    X = np.column_stack(
        [rng.normal(size=n) + s * y for s in shifts]
        + [
            rng.exponential(size=n) * (1 + 3 * y),
            np.where(y == 1, 5.0, 0.0) + 0.01 * rng.normal(size=n),
        ]
    )
    x = standardise(X)
    a, b = fit_logistic_1d(x, y)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    ours = score_binary(X, y, cv)
    for j in range(X.shape[1]):
        (a_ref, b_ref), metrics = sklearn_reference(X[:, j], y, cv)
        assert abs(a[j] - a_ref) < 1e-6 and abs(b[j] - b_ref) < 1e-6, (j, a[j], a_ref, b[j], b_ref)
        assert np.allclose(ours[j], metrics, atol=1e-9, rtol=0), (j, ours[j], metrics)
    assert ours[-1, 1] > 0.99 and abs(ours[0, 2] - 0.5) < 0.05  # separable; useless


def test_newton_terms_are_exact_also_where_exp_would_overflow():
    """Objective, gradient and Hessian of the weighted, penalised log-loss against a direct
    computation (logaddexp, expit), over several row blocks; in the later ones |a + b x|
    reaches thousands, where exp(-eta) overflows: the values stay finite and exact, and no
    overflow warning is raised."""
    rng = np.random.default_rng(0)
    n, k, C = 3000, 48, 0.7
    assert n > 3 * (ROW_BLOCK_ELEMENTS // k)  # several blocks of rows
    x = rng.normal(size=(n, k))
    x[2500:] *= 300.0
    y = (rng.random(n) < 0.4).astype(float)
    weight = (rng.random(n) < 0.8).astype(float)
    a, b = rng.normal(size=k), 3.0 * rng.normal(size=k)
    eta = a + b * x
    assert eta.min() < -1000 and eta[:2500].min() > -700
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _newton_terms(x, y, weight, a, b, C)
    p, s = expit(eta), expit(eta) * expit(-eta)
    r = p - y[:, None]
    expected = np.array(
        [
            C * (weight @ (np.logaddexp(0.0, -eta) + (1.0 - y)[:, None] * eta)) + b**2 / 2,
            C * (weight @ r),
            C * (weight @ (r * x)) + b,
            C * (weight @ s),
            C * (weight @ (s * x)),
            C * (weight @ (s * x * x)) + 1.0,
        ]
    )
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_batched_newton_weights_leave_rows_out_and_any_start_converges():
    """A weight of 0 leaves a row out as if it were removed (a CV fold without a copy),
    from the default start or any other, integer ones included; no columns, no fits."""
    rng = np.random.default_rng(5)
    n = 400
    y = (rng.random(n) < 0.35).astype(int)
    x = standardise(np.column_stack([rng.normal(size=n) + s * y for s in (0.2, 1.0, 2.0)]))
    weight = (rng.random(n) < 0.7).astype(float)
    kept = weight > 0
    for j in range(x.shape[1]):
        clf = LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=1000)
        clf.fit(x[kept, j : j + 1], y[kept])
        for start in (None, ([0, 0, 0], [0, 0, 0]), (np.full(3, 4.0), np.full(3, -3.0))):
            a, b = fit_logistic_1d(x, y, weight=weight, start=start)
            assert abs(a[j] - clf.intercept_[0]) < 1e-6, (j, start, a[j], clf.intercept_)
            assert abs(b[j] - clf.coef_[0, 0]) < 1e-6, (j, start, b[j], clf.coef_)
    a, b = fit_logistic_1d(np.empty((n, 0)), y)
    assert a.shape == b.shape == (0,)


def test_batched_newton_from_a_far_start_escapes_a_saturated_sigmoid():
    """From a start where the sigmoid saturates (curvature ~ e^-50) the full Newton step is
    astronomically long: it is shortened, not halved 60 times and given up far from the
    optimum (a factor non-zero in one cell, 5 % cases: intercept -58 instead of -2.9)."""
    rng = np.random.default_rng(0)
    n = 300
    y = (rng.random(n) < 0.05).astype(int)
    y[:3] = 1
    one_cell = np.zeros(n)
    one_cell[rng.integers(n)] = 1.0
    separable = np.where(y == 1, 5.0, 0.0) + 0.01 * rng.normal(size=n)
    x = standardise(np.column_stack([one_cell, separable, rng.normal(size=n) + y]))
    for start in ((np.full(3, 4.0), np.full(3, -3.0)), (np.full(3, -6.0), np.full(3, 9.0))):
        a, b = fit_logistic_1d(x, y, start=start)
        for j in range(3):
            clf = LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=1000)
            clf.fit(x[:, j : j + 1], y)
            assert abs(a[j] - clf.intercept_[0]) < 1e-6 and abs(b[j] - clf.coef_[0, 0]) < 1e-6, (
                j, start[0][0], a[j], clf.intercept_[0], b[j], clf.coef_[0, 0],
            )  # fmt: skip


def test_score_binary_uses_its_penalty_everywhere():
    """A strong penalty (C = 0.005) shrinks the slopes towards 0 and the predictions towards
    the majority class: on all cells and in every fold, as scikit-learn with that C."""
    rng = np.random.default_rng(11)
    n = 600
    y = (rng.random(n) < 0.3).astype(int)
    X = np.column_stack([rng.normal(size=n) + s * y for s in (0.5, 1.0, 2.0)])
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    strong, default = score_binary(X, y, cv, C=0.005), score_binary(X, y, cv)
    for j in range(X.shape[1]):
        _, metrics = sklearn_reference(X[:, j], y, cv, C=0.005)
        np.testing.assert_allclose(strong[j], metrics, atol=1e-9, rtol=0, err_msg=str(j))
    assert (strong[:, :2] != default[:, :2]).any(axis=1).all()  # the penalty changed them


def test_standardise_centres_and_scales_in_float64():
    rng = np.random.default_rng(2)
    x = np.column_stack(
        [rng.normal(3.0, 0.5, size=50), rng.normal(-2.0, 4.0, size=50), np.full(50, 7.0)]
    ).astype(np.float32)
    z = standardise(x)
    assert z.dtype == np.float64 and z.shape == x.shape
    wide = x.astype(np.float64)
    np.testing.assert_allclose(z[:, :2], (wide[:, :2] - wide[:, :2].mean(0)) / wide[:, :2].std(0))
    np.testing.assert_allclose(z[:, :2].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:, :2].std(axis=0), 1.0, rtol=1e-12)
    assert (z[:, 2] == 0.0).all()  # a constant column: centred only, not 0 / 0


def test_auroc_columns_counts_ties_half():
    y = np.array([0, 0, 1, 1, 1])
    scores = np.array([[0.1, 1.0], [0.4, 1.0], [0.35, 1.0], [0.8, 1.0], [0.9, 1.0]])
    expected = [roc_auc_score(y, scores[:, j]) for j in range(2)]
    assert np.allclose(auroc_columns(y, scores), expected) and expected[1] == 0.5


def replicate_table(values: dict[str, list[float]], model: str = "ae") -> pd.DataFrame:
    """Score rows of several replicates: ``{term: [accuracy_cv of replicate 0, 1, ...]}``."""
    rows = []
    n_reps = len(next(iter(values.values())))
    for r in range(n_reps):
        rep = pd.DataFrame(
            {
                "dataset": "d", "model": model, "setup": model, "replicate": r, "seed": 10 + r,
                "term": list(values), "display_name": list(values), "kind": "annotated",
                "accuracy_train": [v[r] + 0.01 for v in values.values()],
                "accuracy_cv": [v[r] for v in values.values()],
                "auroc": [v[r] + 0.1 for v in values.values()],
                "accuracy_chance": 0.5, "response_share": [v[r] / 2 for v in values.values()],
                "weight_norm": 1.0, "active": [True, True, r != 0],
            }
        )  # fmt: skip
        rep["rank"] = rep["accuracy_cv"].rank(ascending=False, method="first").astype(int)
        rows.append(rep)
    return combine_replicates(rows)


def test_summary_over_replicates():
    scores = replicate_table({"A": [0.9, 0.7, 0.8], "B": [0.8, 0.85, 0.75], "C": [0.5, 0.6, 0.55]})
    summary = summarise_scores(scores)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    row = summary.set_index("term")
    assert row.loc["A", "accuracy_cv_mean"] == pytest.approx(0.8)
    assert row.loc["A", "accuracy_cv_sd"] == pytest.approx(0.1)
    assert row.loc["A", "auroc_mean"] == pytest.approx(0.9)
    assert row.loc["A", "first_fraction"] == pytest.approx(2 / 3)  # first in replicates 0, 2
    assert row.loc["B", "first_fraction"] == pytest.approx(1 / 3)
    assert row.loc["B", "rank_median"] == 2 and row.loc["C", "rank_median"] == 3
    assert row.loc["C", "active_fraction"] == pytest.approx(2 / 3)
    assert list(summary["term"]) == ["A", "B", "C"]  # by mean CV accuracy (0.8, 0.8 -> AUROC)
    assert list(summary["rank_of_mean"]) == [1, 2, 3] and (summary["replicates"] == 3).all()
    one = summarise_scores(scores[scores["replicate"] == 0])
    assert one["accuracy_cv_sd"].isna().all() and (one["replicates"] == 1).all()
    with pytest.raises(ValueError, match="twice"):
        combine_replicates([scores, scores[scores["replicate"] == 1]])


def test_score_scripts_per_replicate_then_per_model_then_side_by_side(
    planted, planted_prepared, tmp_path
):
    factors, truth = planted
    per_model = {}
    for model in ("ae", "slalom"):
        paths = []
        for rep in (0, 1):
            fit = factors.copy()
            fit.uns["run"] = {**fit.uns["run"], "seed": rep, "setup": model}
            fit.X = fit.X + np.random.default_rng(rep).normal(scale=0.3, size=fit.shape)
            h5 = tmp_path / f"{model}{rep}.h5ad"
            fit.write_h5ad(h5)
            out = tmp_path / f"{model}_rep{rep}.tsv"
            extra = {k: str(tmp_path / f"{model}_rep{rep}_{k}.tsv") for k in ("permuted", "null")}
            call_main(
                "score",
                input={"factors": str(h5), "prepared": planted_prepared},
                params={"dataset": "sim", "model": model, "replicate": rep, "cv_folds": 3,
                        "seed": 0, "design": {"sample_key": None}, "label_permutations": 20},
                output={"scores": str(out), "permuted": extra["permuted"],
                        "label_null": extra["null"]},
            )  # fmt: skip
            paths.append(str(out))
            shares = read_scores(str(out)).set_index("term")["response_share"]
            assert set(shares.nlargest(len(truth)).index) == set(truth)  # they carry it
            control = read_scores(extra["permuted"]).set_index("term")["response_share"]
            assert control.abs().max() < shares.max() / 5
            assert pd.read_csv(extra["null"], sep="\t").shape == (20, factors.n_vars)
        per_model[model] = {k: str(tmp_path / f"{model}_{k}.tsv") for k in ("scores", "summary")}
        call_main(
            "summarise_model",
            input={"scores": paths},
            params={"replicates": [0, 1], "model": model},
            output=per_model[model],
        )
        with pytest.raises(ValueError, match="expected"):
            call_main(
                "summarise_model",
                input={"scores": paths[:1]},
                params={"replicates": [0, 1], "model": model},
                output={k: str(tmp_path / f"bad_{k}.tsv") for k in ("scores", "summary")},
            )
    table = read_scores(per_model["ae"]["scores"])
    assert list(table.columns) == list(SCORE_COLUMNS)
    assert sorted(set(table["replicate"])) == [0, 1] and list(table["seed"].unique()) == [0, 1]
    assert table["active"].dtype == bool and len(table) == 2 * factors.n_vars
    summary = read_summary(per_model["ae"]["summary"])
    assert set(summary["term"].head(len(truth))) == set(truth)
    assert (summary["replicates"] == 2).all() and summary["accuracy_cv_sd"].notna().all()

    gathered = {k: str(tmp_path / f"all_{k}.tsv") for k in ("scores", "summary")}
    call_main(
        "gather_scores",
        input={
            "scores": [per_model[m]["scores"] for m in ("ae", "slalom")],
            "summaries": [per_model[m]["summary"] for m in ("ae", "slalom")],
        },
        params={"models": ["ae", "slalom"]},
        output=gathered,
    )
    both = read_scores(gathered["scores"])
    assert list(dict.fromkeys(both["model"])) == ["ae", "slalom"]
    assert len(read_summary(gathered["summary"])) == 2 * factors.n_vars
    with pytest.raises(ValueError, match="expected"):
        call_main(
            "gather_scores",
            input={
                "scores": [per_model["ae"]["scores"]],
                "summaries": [per_model["ae"]["summary"]],
            },
            params={"models": ["slalom"]},
            output={k: str(tmp_path / f"bad_all_{k}.tsv") for k in ("scores", "summary")},
        )


def test_unreadable_factor_file_names_the_file(tmp_path):
    from iae_pipeline.contract import read_factors

    bad = tmp_path / "factors.h5ad"
    bad.write_text("not hdf5")
    with pytest.raises(ValueError, match="factors.h5ad"):
        read_factors(str(bad))


def test_score_factor_is_scikit_learn_with_the_given_folds():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    x = rng.normal(size=60) + 0.8 * y
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=4)
    X = (x - x.mean()) / x.std()
    clf = LogisticRegression(max_iter=200)
    proba = cross_val_predict(clf, X[:, None], y, cv=cv, method="predict_proba")
    expected = (
        accuracy_score(y, clf.fit(X[:, None], y).predict(X[:, None])),
        accuracy_score(y, proba.argmax(axis=1)),
        roc_auc_score(y, proba[:, 1]),
    )
    assert score_factor(x, y, cv) == pytest.approx(expected)


def test_score_runs_labels_the_rows_and_passes_its_options(planted):
    factors, _ = planted
    regrouped = factors.copy()
    regrouped.obs["stim"] = regrouped.obs["condition"]  # scored; "condition" shuffled
    shuffled = np.random.default_rng(1).permutation(regrouped.obs["condition"].to_numpy())
    regrouped.obs["condition"] = pd.Categorical(shuffled)
    regrouped.uns["run"] = dict(regrouped.uns["run"], seed=11, setup="wide")
    table = score_runs(
        {"b": regrouped, "a": regrouped}, "sim", condition_key="stim", cv_folds=3, seed=7
    )
    assert list(table.columns) == list(SCORE_COLUMNS) and table.index.equals(
        pd.RangeIndex(2 * regrouped.n_vars)
    )
    assert list(table["model"].unique()) == ["b", "a"] and set(table["dataset"]) == {"sim"}
    assert set(table["setup"]) == {"wide"} and set(table["seed"]) == {11}
    assert set(table["replicate"]) == {0}
    alone = score_factors(regrouped, condition_key="stim", cv_folds=3, seed=7)
    for column in ("accuracy_cv", "auroc", "rank"):
        np.testing.assert_array_equal(table[column][: regrouped.n_vars], alone[column])
    assert table["accuracy_cv"].max() > 0.8  # the planted terms, by "stim"
    default = score_replicate(factors, "sim", "m")
    pd.testing.assert_frame_equal(
        default.drop(columns=["dataset", "model", "setup", "replicate", "seed", "response_share"]),
        score_factors(factors, cv_folds=5, seed=0),
    )
    assert default["response_share"].isna().all()  # no response given
    assert set(default["replicate"]) == {0}
    pd.testing.assert_frame_equal(score_runs({"m": factors}, "sim"), default)  # 5 folds, seed 0
    assert score_replicate(factors, "sim", "m", replicate=3)["replicate"].eq(3).all()
    with pytest.raises(ValueError, match=r"^no factor files given for dataset 'sim'; check the"):
        score_runs({}, "sim")


def test_score_tables_read_back_and_combine_in_order(tmp_path):
    scores = replicate_table({"B": [0.9, 0.7], "A": [0.8, 0.85], "C": [0.5, 0.6]})
    path = tmp_path / "scores.tsv"
    written = scores.assign(active=["True", "1", "false", "0", "TRUE", "no"])
    written.to_csv(path, sep="\t", index=False)
    back = read_scores(str(path))
    assert back["active"].tolist() == [True, True, False, False, True, False]
    written.drop(columns=["auroc", "rank"]).to_csv(path, sep="\t", index=False)
    message = (
        rf"^{re.escape(str(path))}: score table lacks column\(s\) \['auroc', 'rank'\]; "
        r"regenerate it with scripts/score.py$"
    )
    with pytest.raises(ValueError, match=message):
        read_scores(str(path))
    reps = [scores[scores["replicate"] == r] for r in (1, 0)]
    combined = combine_replicates(reps)
    assert combined.index.equals(pd.RangeIndex(6))
    assert combined["replicate"].tolist() == [0, 0, 0, 1, 1, 1]
    assert combined["term"].tolist() == ["B", "A", "C"] * 2  # a replicate's rows in order
    with pytest.raises(ValueError, match=r"^no score tables given; check the rule inputs$"):
        combine_replicates([])
    overlap = (
        r"^score tables overlap: \{'dataset': 'd', 'model': 'ae', 'replicate': 1, 'term': 'B'\}"
    )
    with pytest.raises(ValueError, match=overlap + " appears twice; give each fit once$"):
        combine_replicates([scores, reps[0]])
    refit = reps[0].assign(accuracy_cv=0.5, auroc=0.5)  # the same fit scored again, other numbers
    with pytest.raises(ValueError, match=overlap + " appears twice; give each fit once$"):
        combine_replicates([scores, refit])


def test_summaries_keep_the_models_order_and_tied_terms_order():
    first = replicate_table({"Z": [0.7, 0.7], "Y": [0.7, 0.7], "X": [0.1, 0.1]}, "slalom")
    second = replicate_table({"Z": [0.6, 0.6], "Y": [0.9, 0.9], "X": [0.1, 0.1]}, "ae")
    summary = summarise_scores(pd.concat([first, second], ignore_index=True))
    assert summary.index.equals(pd.RangeIndex(6))
    assert summary["model"].tolist() == ["slalom"] * 3 + ["ae"] * 3
    assert summary["term"].tolist() == ["Z", "Y", "X", "Y", "Z", "X"]  # Z, Y tied: table order
    with pytest.raises(ValueError, match=r"^score table lacks column\(s\) \['rank'\]; regenerate"):
        summarise_scores(first.drop(columns="rank"))


def test_condition_labels_code_the_sorted_levels_and_name_each_problem():
    obs = pd.DataFrame({"condition": ["stim", "ctrl", "stim", "ctrl"]})
    obs.index = [f"c{i}" for i in range(4)]
    adata = ad.AnnData(np.zeros((4, 1), np.float32), obs=obs)
    assert condition_labels(adata).tolist() == [1, 0, 1, 0]  # ctrl < stim
    assert condition_labels(adata, min_per_class=2).tolist() == [1, 0, 1, 0]  # 2 each: enough
    cases = [
        ({"key": "group"}, r"^obs\['group'\] is missing; the factors file must carry the condition$"),
        ({"min_per_class": 3}, r"^obs\['condition'\] level\(s\) \{'ctrl': 2, 'stim': 2\} have "
         r"fewer than 3 cells, too few for 3-fold cross-validation; lower scoring.cv_folds or "
         r"drop the level$"),
    ]  # fmt: skip
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            condition_labels(adata, **options)
    uneven = adata.copy()
    uneven.obs["condition"] = ["a", "b", "b", "b"]
    with pytest.raises(ValueError, match=r"level\(s\) \{'a': 1\} have fewer than 2 cells"):
        condition_labels(uneven)
    with pytest.raises(ValueError, match=r"level\(s\) \{'a': 1\} have fewer than 3 cells, too"):
        condition_labels(uneven, min_per_class=3)  # 'b' has 3: enough, not named
    missing = adata.copy()
    missing.obs["condition"] = ["a", None, None, "b"]
    with pytest.raises(
        ValueError,
        match=r"^obs\['condition'\] has 2 missing value\(s\); drop those cells or fill the "
        r"condition before scoring$",
    ):
        condition_labels(missing)
    single = adata.copy()
    single.obs["condition"] = "x"
    with pytest.raises(
        ValueError,
        match=r"^obs\['condition'\] has a single level \(\['x'\]\); scoring needs at least two "
        r"conditions$",
    ):
        condition_labels(single)


@pytest.mark.filterwarnings("ignore:Variable names are not unique")  # renamed at once
def test_score_factors_options_ties_and_refusals(planted):
    factors, _ = planted
    twin = factors[:, [0, 0, 1]].copy()
    twin.var_names = ["first", "second", "other"]
    table = score_factors(twin, cv_folds=3)
    assert table["rank"].dtype.kind == "i" and table["weight_norm"].dtype == np.float64
    assert table["active"].dtype == bool
    tied = table.set_index("term").loc[["first", "second"], "rank"].tolist()
    assert tied[1] == tied[0] + 1  # equal scores: ranked in row order
    binary = score_binary(
        np.asarray(twin.X, dtype=np.float64),
        condition_labels(twin),
        StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
    )
    np.testing.assert_array_equal(table[["accuracy_train", "accuracy_cv", "auroc"]], binary)
    pd.testing.assert_frame_equal(
        score_factors(factors), score_factors(factors, cv_folds=5, seed=0)
    )
    sparse = factors.copy()
    sparse.X = sp.csr_matrix(factors.X)
    pd.testing.assert_frame_equal(
        score_factors(sparse, cv_folds=2), score_factors(factors, cv_folds=2)
    )
    with pytest.raises(
        ValueError, match=r"^cv_folds must be at least 2, got 1; set scoring.cv_folds$"
    ):
        score_factors(factors, cv_folds=1)
    broken = factors.copy()
    broken.X[3, 1:5] = np.nan
    names = list(broken.var_names[1:4])
    with pytest.raises(
        ValueError,
        match=re.escape(f"factor(s) {names}; the model run diverged, refit it"),
    ):
        score_factors(broken, cv_folds=3)
    multi = factors.copy()
    stim = multi.obs["condition"].astype(str).to_numpy() == "stimulated"
    multi.obs["condition"] = pd.Categorical(
        np.where(stim, np.where(np.arange(multi.n_obs) % 2 == 0, "mild", "severe"), "healthy")
    )
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=2)
    y = condition_labels(multi)
    one = score_factor(np.asarray(multi.X)[:, 0], y, cv)
    row = score_factors(multi, cv_folds=3, seed=2).iloc[0]
    assert (row["accuracy_train"], row["accuracy_cv"], row["auroc"]) == pytest.approx(one)


def test_rank_orders_by_cv_accuracy_then_auroc_then_training_accuracy(planted):
    factors, truth = planted
    backwards = factors[:, list(range(factors.n_vars))[::-1]].copy()  # the planted terms last
    table = score_factors(backwards, cv_folds=3)
    columns = [table[c].to_numpy() for c in ("accuracy_cv", "auroc", "accuracy_train")]
    order = sorted(range(len(table)), key=lambda i: (*(-c[i] for c in columns), i))
    expected = np.empty(len(table), dtype=int)
    expected[order] = np.arange(1, len(table) + 1)
    np.testing.assert_array_equal(table["rank"].to_numpy(), expected)
    assert set(table.loc[table["rank"] <= len(truth), "term"]) == set(truth)


def test_score_table_types_do_not_depend_on_the_factor_file(planted):
    """A factor file from elsewhere may hold float32 norms and 0 / 1 activity flags: the
    table has float64 norms and boolean flags all the same."""
    factors, _ = planted
    other = factors.copy()
    other.var["weight_norm"] = np.linspace(0.5, 2.0, other.n_vars, dtype=np.float32)
    other.var["active"] = (np.arange(other.n_vars) % 3 != 0).astype(np.int8)
    table = score_factors(other, cv_folds=3)
    assert table["weight_norm"].dtype == np.float64 and table["active"].dtype == bool
    np.testing.assert_array_equal(table["weight_norm"], other.var["weight_norm"].astype(float))
    np.testing.assert_array_equal(table["active"], np.arange(other.n_vars) % 3 != 0)
