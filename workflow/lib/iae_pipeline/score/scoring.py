"""How well each factor separates the condition: univariate logistic regression per factor.

For every factor (column of a contract ``factors.h5ad``) a logistic regression of
``obs['condition']`` on the standardised loading is fitted, with scikit-learn's
``LogisticRegression`` defaults (L2 penalty, ``C = 1``, unpenalised intercept):

- ``accuracy_train``: accuracy of the fit on all cells (the number the paper reports);
- ``accuracy_cv``: accuracy of the out-of-fold predictions of a seeded stratified k-fold split;
- ``auroc``: area under the ROC curve of those out-of-fold predictions (macro one-vs-rest
  when the condition has more than two levels);
- ``accuracy_chance``: the majority-class rate, what a constant predictor reaches;
- ``response_share``: the factor's share of the condition's expression change
  (:mod:`iae_pipeline.score.response`; it needs the prepared data, so the caller adds it);
- ``rank``: 1 for the factor with the best ``accuracy_cv`` (ties broken by ``auroc``).

A two-level condition (every prepared dataset) is fitted for all factors at once by
:func:`fit_logistic_1d`, a batched Newton solver of the same objective (scikit-learn fits
one factor at a time, hours for 300 factors x 6 fits at a million cells; the batched solver
takes minutes, ``benchmarks/README.md``); more levels go through scikit-learn factor by
factor. Replicates of a model (one fit per seed) are scored one by one and summarised per
term by :func:`summarise_scores`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from iae_pipeline.contract import validate_factor_anndata
from interpretable_ae.genesets import display_name

log = logging.getLogger(__name__)

SCORE_COLUMNS = (
    "dataset",
    "model",
    "setup",
    "replicate",
    "seed",
    "term",
    "display_name",
    "kind",
    "accuracy_train",
    "accuracy_cv",
    "auroc",
    "accuracy_chance",
    "response_share",
    "weight_norm",
    "active",
    "rank",
)
SUMMARY_COLUMNS = (
    "dataset",
    "model",
    "term",
    "display_name",
    "kind",
    "replicates",
    "accuracy_cv_mean",
    "accuracy_cv_sd",
    "auroc_mean",
    "auroc_sd",
    "accuracy_train_mean",
    "accuracy_train_sd",
    "response_share_mean",
    "response_share_sd",
    "rank_median",
    "first_fraction",
    "active_fraction",
    "weight_norm_mean",
    "rank_of_mean",
)
# Factors are scored CHUNK_ELEMENTS / n_cells at a time (their float64 copy: 32 MB, and as
# much for the held-out predictions; 128 MB each made the job 1.1 GB at 200,000 cells), and
# summed over in blocks of ROW_BLOCK_ELEMENTS values (256 KB, in the CPU cache).
CHUNK_ELEMENTS = 1 << 22
ROW_BLOCK_ELEMENTS = 1 << 15
# A Newton step moves a parameter by at most this much (the data are standardised): where the
# sigmoid saturates its curvature vanishes, and the full step would be astronomically long.
MAX_STEP = 8.0


def condition_labels(
    adata: ad.AnnData, key: str = "condition", min_per_class: int = 2
) -> np.ndarray:
    """The condition as integer class labels, checked to be a classification target.

    Parameters
    ----------
    adata
        A factor file (or any AnnData with the condition in ``obs``).
    key
        The condition's column.
    min_per_class
        The fewest cells a class may have (the CV folds need one per fold).

    Returns
    -------
    numpy.ndarray
        0, 1, ... per cell, in the order of the column's categories.

    Raises
    ------
    ValueError
        A missing column, fewer than two classes, or a class with too few cells.
    """
    if key not in adata.obs:
        raise ValueError(f"obs['{key}'] is missing; the factors file must carry the condition")
    values = adata.obs[key]
    if values.isna().any():
        raise ValueError(
            f"obs['{key}'] has {int(values.isna().sum())} missing value(s); drop those cells or "
            "fill the condition before scoring"
        )
    codes, levels = pd.factorize(values.astype(str), sort=True)
    counts = np.bincount(codes, minlength=len(levels))
    if len(levels) < 2:
        raise ValueError(
            f"obs['{key}'] has a single level ({list(levels)}); scoring needs at least two "
            "conditions"
        )
    if counts.min() < min_per_class:
        small = {str(lv): int(c) for lv, c in zip(levels, counts, strict=True) if c < min_per_class}
        raise ValueError(
            f"obs['{key}'] level(s) {small} have fewer than {min_per_class} cells, too few for "
            f"{min_per_class}-fold cross-validation; lower scoring.cv_folds or drop the level"
        )
    return codes


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit standard deviation (constant columns: centred only).

    Parameters
    ----------
    x
        Cells x factors.

    Returns
    -------
    numpy.ndarray
        float64, the same shape.
    """
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


# --------------------------------------------------------------------------- binary: batched


def _newton_terms(
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray | None,
    a: np.ndarray,
    b: np.ndarray,
    C: float,
    cols: np.ndarray | None = None,
) -> np.ndarray:
    """Rows ``(objective, g0, g1, h00, h01, h11)`` x columns ``cols`` of ``x`` (default all):
    the objective ``C * sum(weight * log-loss) + b**2 / 2`` at ``(a, b)``, its gradient and
    Hessian in ``(a, b)``. One pass over ``x`` in blocks of rows that stay in the CPU cache,
    every term of a block from one ``exp`` (the log-loss is ``log1p(exp(-eta)) + (1 - y)
    eta``)."""
    n = x.shape[0]
    k = x.shape[1] if cols is None else len(cols)
    out = np.zeros((6, k))
    rows = max(1, ROW_BLOCK_ELEMENTS // max(k, 1))
    for lo in range(0, n, rows):
        xb, yb = x[lo : lo + rows], y[lo : lo + rows]
        if cols is not None:
            xb = xb[:, cols]
        vb = None if weight is None else weight[lo : lo + rows]
        eta = xb * b
        eta += a
        ones = np.ones(len(yb)) if vb is None else vb
        if eta.min(initial=0.0) < -700:  # exp(-eta) would overflow: the stable, slower forms
            loss = np.log1p(np.exp(-np.abs(eta))) + np.maximum(eta, 0.0) - yb[:, None] * eta
            out[0] += ones @ loss
            p = expit(eta)
        else:
            p = np.exp(-eta)
            out[0] += ones @ np.log1p(p) + ((1.0 - yb) * ones) @ eta
            p += 1.0
            np.reciprocal(p, out=p)
        r = p - yb[:, None]
        w = p - p * p
        if vb is not None:
            r *= vb[:, None]
            w *= vb[:, None]
        out[1] += r.sum(axis=0)
        out[2] += np.einsum("ij,ij->j", r, xb)
        out[3] += w.sum(axis=0)
        w *= xb
        out[4] += w.sum(axis=0)
        out[5] += np.einsum("ij,ij->j", w, xb)
    out *= C
    out[0] += 0.5 * b**2
    out[2] += b
    out[5] += 1.0
    return out


def fit_logistic_1d(
    x: np.ndarray,
    y: np.ndarray,
    *,
    C: float = 1.0,
    weight: np.ndarray | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(intercept, slope)`` of ``y ~ logistic(a + b x)`` for every column of ``x`` at once.

    The objective is scikit-learn's ``LogisticRegression`` (L2 on the slope only, ``C`` the
    inverse penalty). Newton's method on the two parameters of every column, vectorised over
    columns, no step moving a parameter by more than ``MAX_STEP``, halved until the objective
    decreases (Armijo); a column is done after a Newton step that moves no parameter by more
    than ``tol`` (relative for values above 1): quadratic convergence leaves an error of
    about its square.

    Parameters
    ----------
    x
        Cells x columns, standardised (:func:`standardise`).
    y
        0 / 1 per cell, both present.
    C
        The inverse L2 penalty of the slope.
    weight
        1 for the rows that count, 0 for those left out: a CV fold without copying the data.
    tol
        The stopping rule, on the parameters' change.
    max_iter
        Newton steps at most.
    start
        Initial ``(intercept, slope)`` (default: the log-odds of ``y`` and 0).

    Returns
    -------
    intercept, slope : numpy.ndarray
        One value per column.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]])
    >>> y = np.array([0, 0, 1, 0, 1, 1])
    >>> a, b = fit_logistic_1d(x, y)
    >>> bool(b[0] > 0)
    True
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    k = x.shape[1]
    if start is None:
        used = y if weight is None else y[np.asarray(weight) > 0]
        mean_y = used.mean()
        a, b = np.full(k, np.log(mean_y / (1.0 - mean_y))), np.zeros(k)
    else:
        a, b = (np.array(s, dtype=np.float64) for s in start)
    terms = _newton_terms(x, y, weight, a, b, C)
    todo = np.ones(k, dtype=bool)
    for _ in range(max_iter):
        cols = np.flatnonzero(todo)
        if cols.size == 0:
            break
        f, g0, g1, h00, h01, h11 = terms[:, cols]
        det = h00 * h11 - h01**2
        d0 = (h11 * g0 - h01 * g1) / det
        d1 = (h00 * g1 - h01 * g0) / det
        decrease = g0 * d0 + g1 * d1  # > 0: the Newton direction goes downhill
        # a step this small is the last: Newton's quadratic convergence leaves an error of
        # its square, so it is taken without evaluating the objective there
        last = np.maximum(np.abs(d0), np.abs(d1)) <= tol * np.maximum(
            1.0, np.maximum(np.abs(a[cols]), np.abs(b[cols]))
        )
        a[cols[last]] -= d0[last]
        b[cols[last]] -= d1[last]
        todo[cols[last]] = False
        step = MAX_STEP / np.maximum(np.maximum(np.abs(d0), np.abs(d1)), MAX_STEP)  # <= 1
        pending = ~last
        for _halving in range(60):
            idx = np.flatnonzero(pending)
            if idx.size == 0:
                break
            at = cols[idx]
            ta = a[at] - step[idx] * d0[idx]
            tb = b[at] - step[idx] * d1[idx]
            new = _newton_terms(x, y, weight, ta, tb, C, None if at.size == k else at)
            ok = new[0] <= f[idx] - 1e-4 * step[idx] * decrease[idx]
            # at the optimum rounding makes equality the best to expect
            ok |= np.abs(new[0] - f[idx]) <= 1e-13 * np.abs(f[idx])
            good = at[ok]
            a[good], b[good] = ta[ok], tb[ok]
            terms[:, good] = new[:, ok]
            pending[idx[ok]] = False
            step[idx[~ok]] *= 0.5
        # no decrease at any step length: at the optimum up to rounding
        todo[cols[pending]] = False
    if todo.any():
        log.warning(
            "logistic regression: %d of %d factor(s) not converged after %d Newton steps",
            int(todo.sum()), k, max_iter,
        )  # fmt: skip
    return a, b


def auroc_columns(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The area under the ROC curve of each column of scores for a binary label.

    The fraction of (case, control) pairs in which the case scores higher, ties counting
    half, as scikit-learn's ``roc_auc_score``; both groups sorted and the cases placed among
    the controls by binary search (5x faster than ranking all cells).

    Parameters
    ----------
    y
        Boolean or 0 / 1 per cell (True / 1: a case).
    scores
        Cells x columns.

    Returns
    -------
    numpy.ndarray
        One AUROC per column.

    Examples
    --------
    >>> import numpy as np
    >>> auroc_columns(np.array([0, 0, 1, 1]), np.array([[0.1], [0.4], [0.35], [0.8]])).tolist()
    [0.75]
    """
    y = np.asarray(y, dtype=bool)
    cases, controls = np.sort(scores[y], axis=0), np.sort(scores[~y], axis=0)
    out = np.empty(scores.shape[1])
    for j in range(scores.shape[1]):
        below = np.searchsorted(controls[:, j], cases[:, j], side="left").sum()
        not_above = np.searchsorted(controls[:, j], cases[:, j], side="right").sum()
        out[j] = (below + not_above) / 2.0
    return out / (len(cases) * len(controls))


def score_binary(
    X: np.ndarray, y: np.ndarray, cv: StratifiedKFold, *, C: float = 1.0
) -> np.ndarray:
    """Training accuracy, CV accuracy and AUROC of every column for a two-class condition.

    Every column is standardised and fitted on all cells and in every fold at once
    (:func:`fit_logistic_1d`), ``CHUNK_ELEMENTS`` values at a time.

    Parameters
    ----------
    X
        Cells x factors.
    y
        0 / 1 per cell.
    cv
        The folds.
    C
        The inverse L2 penalty.

    Returns
    -------
    numpy.ndarray
        Factors x 3: ``accuracy_train``, ``accuracy_cv``, ``auroc``.
    """
    n, k = X.shape
    folds = list(cv.split(np.zeros(n), y))
    out = np.empty((k, 3))
    width = max(1, CHUNK_ELEMENTS // max(n, 1))
    positive = y == 1
    for start in range(0, k, width):
        cols = slice(start, min(k, start + width))
        x = standardise(X[:, cols])
        full = fit_logistic_1d(x, y, C=C)
        train_pred = (full[0] + full[1] * x) > 0  # class 1 when a + b x > 0, as scikit-learn
        out[cols, 0] = (train_pred == positive[:, None]).mean(axis=0)
        del train_pred
        held_out = np.empty_like(x)
        for train, test in folds:  # each fold starts from the fit on all cells
            weight = np.zeros(n)
            weight[train] = 1.0
            a, b = fit_logistic_1d(x, y, C=C, weight=weight, start=full)
            held_out[test] = a + b * x[test]
        out[cols, 1] = ((held_out > 0) == positive[:, None]).mean(axis=0)
        # the predicted probability expit(eta) is monotone in eta: the same ranks, and no
        # ties from probabilities rounded to 1.0
        out[cols, 2] = auroc_columns(positive, held_out)
    return out


# --------------------------------------------------------------------------- any: sklearn


def score_factor(
    x: np.ndarray, y: np.ndarray, cv: StratifiedKFold, max_iter: int = 200
) -> tuple[float, float, float]:
    """The scores of one factor with scikit-learn, for any number of classes.

    Parameters
    ----------
    x
        The factor's value per cell.
    y
        Class labels per cell.
    cv
        The folds.
    max_iter
        lbfgs iterations at most.

    Returns
    -------
    tuple of float
        Training accuracy, out-of-fold accuracy, out-of-fold AUROC (macro one-vs-rest for
        more than two classes).
    """
    X = standardise(np.asarray(x, dtype=np.float64)[:, None])
    clf = LogisticRegression(max_iter=max_iter)
    acc_train = accuracy_score(y, clf.fit(X, y).predict(X))
    proba = cross_val_predict(clf, X, y, cv=cv, method="predict_proba")
    acc_cv = accuracy_score(y, proba.argmax(axis=1))
    if proba.shape[1] == 2:
        auroc = roc_auc_score(y, proba[:, 1])
    else:
        auroc = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    return float(acc_train), float(acc_cv), float(auroc)


def score_factors(
    adata: ad.AnnData,
    *,
    condition_key: str = "condition",
    cv_folds: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """How well each factor of a factor file separates the condition.

    Parameters
    ----------
    adata
        A factor file (:mod:`iae_pipeline.contract`).
    condition_key
        The condition's column.
    cv_folds
        Folds of the stratified cross-validation.
    seed
        Seeds the CV split.

    Returns
    -------
    pandas.DataFrame
        One row per factor, in factor order: ``term``, ``display_name``, ``kind``,
        ``accuracy_train``, ``accuracy_cv``, ``auroc``, ``accuracy_chance``,
        ``weight_norm``, ``active`` and ``rank`` (1 for the best ``accuracy_cv``, ties broken
        by ``auroc``, then ``accuracy_train``).

    Raises
    ------
    ValueError
        Not a factor file, fewer than 2 folds, too few cells in a class, or non-finite
        values (a diverged fit).

    Examples
    --------
    >>> scores = score_factors(read_factors("results/demo/ae/rep0/factors.h5ad"))  # doctest: +SKIP
    >>> scores.sort_values("rank").head()  # doctest: +SKIP
    """
    validate_factor_anndata(adata)
    if cv_folds < 2:
        raise ValueError(f"cv_folds must be at least 2, got {cv_folds}; set scoring.cv_folds")
    y = condition_labels(adata, condition_key, min_per_class=cv_folds)
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    finite = np.isfinite(X).all(axis=0)
    if not finite.all():
        bad = adata.var_names[~finite][:3].tolist()
        raise ValueError(
            f"factor loadings (X) contain NaN/inf, e.g. in factor(s) {bad}; the model run "
            "diverged, refit it"
        )
    cv = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    if y.max() == 1:
        scores = score_binary(X, y, cv)
    else:
        scores = np.array([score_factor(X[:, j], y, cv) for j in range(adata.n_vars)])
    scores = scores.reshape(-1, 3)
    out = pd.DataFrame(
        {
            "term": adata.var_names.astype(str),
            "display_name": [display_name(t) for t in adata.var_names.astype(str)],
            "kind": adata.var["kind"].astype(str).to_numpy(),
            "accuracy_train": scores[:, 0],
            "accuracy_cv": scores[:, 1],
            "auroc": scores[:, 2],
            "accuracy_chance": np.bincount(y).max() / len(y),
            "weight_norm": adata.var["weight_norm"].to_numpy(dtype=np.float64),
            "active": adata.var["active"].to_numpy(dtype=bool),
        }
    )
    out["rank"] = _ranks(out, ["accuracy_cv", "auroc", "accuracy_train"])
    return out


def _ranks(table: pd.DataFrame, by: Sequence[str]) -> np.ndarray:
    """1 for the best row by ``by`` (descending, ties kept in row order), 2 for the next..."""
    order = table.sort_values(list(by), ascending=False, kind="stable").index
    ranks = pd.Series(np.arange(1, len(table) + 1), index=order)
    return ranks.reindex(table.index).to_numpy(dtype=int)


def score_replicate(
    adata: ad.AnnData,
    dataset: str,
    model: str,
    *,
    replicate: int = 0,
    condition_key: str = "condition",
    cv_folds: int = 5,
    seed: int = 0,
    response: pd.Series | None = None,
) -> pd.DataFrame:
    """The score table of one fit: :func:`score_factors` with the dataset, model, setup,
    replicate and the fit's seed in front, and each factor's response share.

    Parameters
    ----------
    adata
        The fit's factor file.
    dataset, model
        Their names.
    replicate
        The replicate's number.
    condition_key, cv_folds, seed
        As for :func:`score_factors`.
    response
        Each factor's ``response_share`` (:func:`iae_pipeline.score.response.response_shares`,
        computed from the prepared data by the caller; NaN when not given).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SCORE_COLUMNS`.
    """
    log.info(
        "scoring %s / %s replicate %d: %d cells x %d factors",
        dataset, model, replicate, *adata.shape,
    )  # fmt: skip
    table = score_factors(adata, condition_key=condition_key, cv_folds=cv_folds, seed=seed)
    table["response_share"] = (
        np.nan if response is None else response.reindex(table["term"]).to_numpy(dtype=float)
    )
    run = adata.uns["run"]
    table.insert(0, "seed", int(run["seed"]))
    table.insert(0, "replicate", int(replicate))
    table.insert(0, "setup", str(run["setup"]))
    table.insert(0, "model", model)
    table.insert(0, "dataset", dataset)
    return table[list(SCORE_COLUMNS)]


def score_runs(
    runs: Mapping[str, ad.AnnData],
    dataset: str,
    *,
    condition_key: str = "condition",
    cv_folds: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """The score table of one replicate of several models.

    Parameters
    ----------
    runs
        ``{model: factor file}``.
    dataset
        The dataset's name.
    condition_key, cv_folds, seed
        As for :func:`score_factors`.

    Returns
    -------
    pandas.DataFrame
        The models' tables, one after the other.
    """
    if not runs:
        raise ValueError(f"no factor files given for dataset '{dataset}'; check the rule inputs")
    frames = [
        score_replicate(
            adata, dataset, model, condition_key=condition_key, cv_folds=cv_folds, seed=seed
        )
        for model, adata in runs.items()
    ]
    return pd.concat(frames, ignore_index=True)


def read_scores(path: str, required: Sequence[str] = SCORE_COLUMNS) -> pd.DataFrame:
    """Read a score table written by :func:`score_replicate` (or a gathered one).

    Parameters
    ----------
    path
        The TSV.
    required
        The columns it must have.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        A missing file or column.
    """
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: score table lacks column(s) {missing}; regenerate it with scripts/score.py"
        )
    if "active" in table:
        table["active"] = table["active"].astype(str).str.lower().isin({"true", "1"})
    return table


def combine_replicates(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One table of several replicates' (or models') scores.

    Parameters
    ----------
    tables
        Score tables.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        No table, or a (dataset, model, replicate) given twice, naming it.
    """
    if not tables:
        raise ValueError("no score tables given; check the rule inputs")
    out = pd.concat(list(tables), ignore_index=True)
    keys = ["dataset", "model", "replicate", "term"]
    dup = out.duplicated(keys)
    if dup.any():
        first = out.loc[dup, keys].iloc[0].to_dict()
        raise ValueError(f"score tables overlap: {first} appears twice; give each fit once")
    return out.sort_values(["dataset", "model", "replicate"], kind="stable").reset_index(drop=True)


def summarise_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, model and term, a summary over the replicates.

    Parameters
    ----------
    scores
        Score tables of a model's replicates (:func:`combine_replicates`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`: mean and sample sd (NaN for one replicate) of CV
        accuracy, AUROC, training accuracy and response share; the median rank; the fractions of replicates
        in which the term ranks first and is active; the mean decoder norm; and
        ``rank_of_mean``, the terms ranked by mean CV accuracy (ties: mean AUROC), by which
        the rows are sorted.
    """
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"score table lacks column(s) {missing}; regenerate it")
    keys = ["dataset", "model", "term"]
    grouped = scores.groupby(keys, sort=False)
    out = grouped.agg(
        display_name=("display_name", "first"),
        kind=("kind", "first"),
        replicates=("replicate", "nunique"),
        accuracy_cv_mean=("accuracy_cv", "mean"),
        accuracy_cv_sd=("accuracy_cv", "std"),
        auroc_mean=("auroc", "mean"),
        auroc_sd=("auroc", "std"),
        accuracy_train_mean=("accuracy_train", "mean"),
        accuracy_train_sd=("accuracy_train", "std"),
        response_share_mean=("response_share", "mean"),
        response_share_sd=("response_share", "std"),
        rank_median=("rank", "median"),
        first_fraction=("rank", lambda r: float((r == 1).mean())),
        active_fraction=("active", lambda a: float(np.mean(a.astype(bool)))),
        weight_norm_mean=("weight_norm", "mean"),
    ).reset_index()
    frames = []
    for _, part in out.groupby(["dataset", "model"], sort=False):
        part = part.sort_values(
            ["accuracy_cv_mean", "auroc_mean"], ascending=False, kind="stable"
        ).copy()
        part["rank_of_mean"] = np.arange(1, len(part) + 1)
        frames.append(part)
    return pd.concat(frames, ignore_index=True)[list(SUMMARY_COLUMNS)]


def read_summary(path: str) -> pd.DataFrame:
    """Read a summary written by :func:`summarise_scores`, checking its columns.

    Parameters
    ----------
    path
        The TSV.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        A missing file or column.
    """
    return read_scores(path, required=SUMMARY_COLUMNS)
