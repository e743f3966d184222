"""Checks of prepared data before any fit: what a later step would refuse, refused now.

:func:`check_ready_to_fit` runs in ``prepare``, so that a fit (hours to days for f-scLVM)
never starts on data that scoring, the figures or the donor-level test would refuse;
:func:`check_finite` is also used by the dataset readers.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from iae_pipeline.config import one_line_text
from iae_pipeline.contract import term_key
from iae_pipeline.samples import make_design
from interpretable_ae.conventions import TERMS_KEY, UNANNOTATED
from interpretable_ae.genesets import display_name

log = logging.getLogger(__name__)


def check_finite(
    X: Any, where: str, obs_names: Sequence[str] | None = None, chunk: int = 4096
) -> None:
    """Refuse NaN or infinite values, checking every value.

    A sparse matrix's stored values are checked at once, a dense (or backed) matrix in
    chunks of cells, never a second full copy.

    Parameters
    ----------
    X
        Cells x genes: dense, sparse or backed.
    where
        Names the data in the message.
    obs_names
        The cells' names, to name the first bad cell.
    chunk
        Cells checked at a time.

    Raises
    ------
    ValueError
        The first NaN or infinite value, naming its cell.
    """
    n_bad, rows = 0, np.empty(0, dtype=np.int64)
    if sp.issparse(X):
        X = X if X.format == "csr" else sp.csr_matrix(X)
        bad = np.flatnonzero(~np.isfinite(X.data))
        n_bad = bad.size
        rows = np.unique(np.searchsorted(X.indptr, bad, side="right") - 1)
    else:
        found = []
        for start in range(0, X.shape[0], chunk):
            bad = ~np.isfinite(np.asarray(X[start : start + chunk]))
            if bad.any():
                n_bad += int(bad.sum())
                found.append(start + np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1)))
        rows = np.concatenate(found) if found else rows
    if n_bad:
        first = f"'{obs_names[rows[0]]}'" if obs_names is not None else f"row {rows[0]}"
        raise ValueError(
            f"{where}: {n_bad} NaN or infinite value(s) in {rows.size} cell(s) (first: {first}); "
            "remove those cells or fix the values (the models need finite values)"
        )


def _missing_terms(terms: Sequence[str], queries: Sequence[str]) -> list[str]:
    keys = {term_key(t) for t in terms}
    return [
        str(q)
        for q in queries
        if str(q) not in terms and term_key(q) not in keys and not UNANNOTATED.match(str(q))
    ]


def check_ready_to_fit(prepared: ad.AnnData, needs: Mapping[str, Any]) -> None:
    """Refuse prepared data that a later step would refuse, before any fit starts.

    Checks: every value of ``X`` is finite; each condition class has at least ``cv_folds``
    cells; covariates are obs columns without missing values; the figures' terms and
    patterns find prepared terms and Figure 3's cell types and groups exist; the sample key
    is a complete obs column whose samples fit the design (paired or not).

    Parameters
    ----------
    prepared
        The prepared data.
    needs
        :func:`iae_pipeline.config.prefit_requirements`: ``source`` (the user's file or
        ``datasets.<name>``, named in the messages), ``dataset``, ``cv_folds``, ``figures``,
        ``covariates`` (``{model: obs keys}``) and ``samples`` (the sample design, or
        ``None``).

    Raises
    ------
    ValueError
        The first problem, in one line naming the data, the key and the fix.
    """
    where, dataset = str(needs.get("source", "prepared data")), str(needs.get("dataset", ""))
    try:
        check_finite(prepared.X, f"{where}: the prepared expression", prepared.obs_names)
        _check_class_sizes(prepared, int(needs.get("cv_folds", 5)), where)
        for model, keys in (needs.get("covariates") or {}).items():
            key = f"models.{model}.options.covariates"
            _check_covariates(prepared.obs, list(keys), key, where)
        _check_figures(prepared, dict(needs.get("figures") or {}), dataset)
        if needs.get("samples"):  # the donor-level test's design (datasets.<name>.sample_key)
            make_design(prepared.obs, **needs["samples"], where=where)
    except ValueError as err:  # a name or label from the user's data may hold a line break
        raise type(err)(one_line_text(str(err))) from None


def _check_class_sizes(prepared: ad.AnnData, cv_folds: int, where: str) -> None:
    counts = prepared.obs["condition"].value_counts()
    small = {str(k): int(v) for k, v in counts.items() if v < cv_folds}
    if not small:
        return
    fewest = min(small.values())
    if fewest >= 2:
        fix = f"lower scoring.cv_folds to {fewest} or less, or keep more cells"
    else:
        fix = (
            "a class needs at least 2 cells for any cross-validation: choose another "
            "condition (condition_key / condition_positive) or keep more cells"
        )
    raise ValueError(
        f"{where}: condition class(es) {small} have fewer cells than scoring.cv_folds = "
        f"{cv_folds} after preparation (each fold needs every class); {fix}"
    )


def _check_covariates(obs: pd.DataFrame, keys: list[str], key: str, where: str) -> None:
    for cov in keys:
        if cov not in obs:
            raise ValueError(
                f"{key}: '{cov}' is not an obs column of {where} (obs: {list(obs.columns)[:15]}); "
                "use one of them or remove it"
            )
        n_missing = int(obs[cov].isna().sum())
        if n_missing:
            raise ValueError(
                f"{key}: obs['{cov}'] of {where} has {n_missing} missing value(s); fill them or "
                "remove the covariate"
            )


def _check_figures(prepared: ad.AnnData, figures: Mapping[str, Any], dataset: str) -> None:
    terms = [str(t) for t in prepared.uns[TERMS_KEY]]

    def refuse(key: str, what: str) -> None:
        raise ValueError(
            f"figures.{key} (dataset {dataset}): {what}; fix the figures settings (terms are "
            "matched exactly or by display name, ignoring case and punctuation)"
        )

    def check_names(key: str, queries: Sequence[str]) -> None:
        missing = _missing_terms(terms, queries)
        if missing:
            close = difflib.get_close_matches(missing[0], terms, n=2, cutoff=0.6)
            hint = f" (closest: {close})" if close else ""
            refuse(
                key,
                f"{missing} not among the {len(terms)} prepared terms{hint}; a set with too few "
                "genes in the data is dropped by preprocess.min_genes",
            )

    fig1, fig2, fig3 = (dict(figures.get(f) or {}) for f in ("fig1", "fig2", "fig3"))
    check_names("fig1.terms", fig1.get("terms") or [])
    spec = fig2.get("terms")
    if isinstance(spec, str):
        try:
            pattern = re.compile(spec, flags=re.IGNORECASE)
        except re.error as err:
            refuse("fig2.terms", f"'{spec}' is not a valid regular expression ({err})")
        if not any(pattern.search(t) or pattern.search(display_name(t)) for t in terms):
            refuse("fig2.terms", f"the pattern '{spec}' matches none of the {len(terms)} terms")
    elif spec:  # a list: terms a size filter removed are reported in the figure, not fatal
        missing = _missing_terms(terms, spec)
        if len(missing) == len(spec):
            check_names("fig2.terms", spec)
        elif missing:
            log.warning(
                "figures.fig2.terms (dataset %s): %s not among the %d prepared terms (dropped "
                "by preprocess.min_genes, or misspelt); Figure 2 reports them as absent",
                dataset, missing, len(terms),
            )  # fmt: skip
    if fig3.get("terms") and fig3.get("cell_types"):  # Figure 3 is drawn
        check_names("fig3.terms", fig3["terms"])
        absent = sorted(
            set(map(str, fig3["cell_types"])) - set(prepared.obs["cell_type"].astype(str))
        )
        if absent:
            refuse("fig3.cell_types", f"{absent} are not cell types of the data")
        group_key = str(fig3.get("group_key", "group"))
        if group_key not in prepared.obs:
            refuse("fig3.group_key", f"'{group_key}' is not an obs column of the prepared data")
        absent = sorted(
            set(map(str, fig3.get("groups") or [])) - set(prepared.obs[group_key].astype(str))
        )
        if absent:
            refuse("fig3.groups", f"{absent} are not values of obs['{group_key}']")
