"""How well each factor separates the condition: univariate logistic regression per factor.

For every factor (column of a contract ``factors.h5ad``) a logistic regression of
``obs['condition']`` on the standardised loading is fitted with scikit-learn:

- ``accuracy_train``: accuracy of the fit on all cells (the number the paper reports);
- ``accuracy_cv``: accuracy of the out-of-fold predictions of a stratified k-fold split;
- ``auroc``: area under the ROC curve of those out-of-fold probabilities (macro one-vs-rest
  when the condition has more than two levels);
- ``accuracy_chance``: the majority-class rate, what a constant predictor reaches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from interpretable_ae.genesets import display_name

from .contract import validate_factor_anndata

log = logging.getLogger(__name__)

SCORE_COLUMNS = (
    "dataset",
    "model",
    "setup",
    "term",
    "display_name",
    "kind",
    "accuracy_train",
    "accuracy_cv",
    "auroc",
    "accuracy_chance",
    "weight_norm",
    "active",
    "rank",
)


def read_factors(path: str) -> ad.AnnData:
    """Read a ``factors.h5ad`` and check it against the factor contract (naming the file)."""
    try:
        adata = ad.read_h5ad(path)
    except (OSError, KeyError) as err:
        raise ValueError(
            f"{path}: cannot be read as an h5ad file ({err}); rerun the model"
        ) from None
    validate_factor_anndata(adata, where=str(path))
    return adata


def read_runs(models: Sequence[str], paths: Sequence[str]) -> dict[str, ad.AnnData]:
    """``{model: factors}`` from model names aligned with their ``factors.h5ad`` paths."""
    models, paths = list(models), [str(p) for p in paths]
    if len(models) != len(paths):
        raise ValueError(
            f"{len(models)} model name(s) but {len(paths)} factor file(s); they must be aligned"
        )
    return {m: read_factors(p) for m, p in zip(models, paths, strict=True)}


def run_label(adata: ad.AnnData, model: str, labels: Mapping[str, str] | None = None) -> str:
    """Display label of a model: ``labels[model]``, else ``uns['run']['label']``, else the name."""
    if labels and model in labels:
        return str(labels[model])
    return str(adata.uns.get("run", {}).get("label", "") or model)


def condition_labels(
    adata: ad.AnnData, key: str = "condition", min_per_class: int = 2
) -> np.ndarray:
    """Integer-coded ``obs[key]``; raises ValueError when it cannot be a classification target."""
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


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return ((x - x.mean()) / (sd if sd > 0 else 1.0))[:, None]


def score_factor(
    x: np.ndarray, y: np.ndarray, cv: StratifiedKFold, max_iter: int = 200
) -> tuple[float, float, float]:
    """(train accuracy, out-of-fold accuracy, out-of-fold AUROC) of ``y ~ logistic(x)``."""
    X = _standardise(np.asarray(x, dtype=np.float64))
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
    """One row per factor of a contract AnnData: accuracies, AUROC, weight norm, activity.

    Rows keep the factor order; ``rank`` is 1 for the best ``accuracy_train`` (ties broken by
    ``auroc``).
    """
    validate_factor_anndata(adata)
    if cv_folds < 2:
        raise ValueError(f"cv_folds must be at least 2, got {cv_folds}; set scoring.cv_folds")
    y = condition_labels(adata, condition_key, min_per_class=cv_folds)
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    if not np.isfinite(X).all():
        bad = adata.var_names[~np.isfinite(X).all(axis=0)][:3].tolist()
        raise ValueError(
            f"factor loadings (X) contain NaN/inf, e.g. in factor(s) {bad}; the model run "
            "diverged, refit it"
        )
    cv = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    scores = np.array([score_factor(X[:, j], y, cv) for j in range(adata.n_vars)]).reshape(-1, 3)
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
    order = out.sort_values(["accuracy_train", "auroc"], ascending=False, kind="stable").index
    out.loc[order, "rank"] = np.arange(1, len(out) + 1)
    out["rank"] = out["rank"].astype(int)
    return out


def score_runs(
    runs: Mapping[str, ad.AnnData],
    dataset: str,
    *,
    condition_key: str = "condition",
    cv_folds: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """The tidy score table of one dataset: :func:`score_factors` for each ``{model: adata}``."""
    if not runs:
        raise ValueError(f"no factor files given for dataset '{dataset}'; check the rule inputs")
    frames = []
    for model, adata in runs.items():
        log.info("scoring %s / %s: %d cells x %d factors", dataset, model, *adata.shape)
        table = score_factors(adata, condition_key=condition_key, cv_folds=cv_folds, seed=seed)
        table.insert(0, "setup", str(adata.uns["run"]["setup"]))
        table.insert(0, "model", model)
        table.insert(0, "dataset", dataset)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)[list(SCORE_COLUMNS)]


def read_scores(path: str, required: Sequence[str] = SCORE_COLUMNS) -> pd.DataFrame:
    """Read a score TSV written by :func:`score_runs`, checking its columns."""
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: score table lacks column(s) {missing}; regenerate it with scripts/score.py"
        )
    table["active"] = table["active"].astype(str).str.lower().isin({"true", "1"})
    return table
