"""The output contract every factor model honours (the autoencoder, f-scLVM, ...).

A fitted model is written as one AnnData, ``factors.h5ad``, so that scoring and plots
never ask which model made it:

- ``X``: cells x factors loadings (float32, dense).
- ``obs``: the cells, with at least ``condition`` and ``cell_type`` copied from the
  prepared data.
- ``var_names``: factor names (full term names for annotated factors,
  ``sparse_0``, ``dense_0``, ... otherwise); ``var['kind']`` is one of
  ``annotated`` / ``sparse`` / ``dense``; ``var['active']`` (bool) says whether the
  factor survived (group lasso or slalom's relevance switch); ``var['weight_norm']``
  is the L2 norm of the factor's gene weights (decoder column).
- ``varm['gene_weights']``: factors x genes weights (the transposed decoder W),
  with the gene names in ``uns['gene_names']``.
- ``uns['run']``: run metadata, a flat dict of scalars/strings: at least ``model``,
  ``setup``, ``seed``; model specific keys (epochs, iterations, converged,
  hyper-parameters) besides. Never a wall time: a rerun with the same seed writes the same
  bytes; timings live in Snakemake's benchmark files (Table 1).

The prepared data every model reads, ``prepared.h5ad``:

- ``X``: log-normalised expression, cells x genes (CSR float32; readers accept dense
  too); genes are the highly variable genes in at least one kept term.
- ``obs['condition']`` and ``obs['cell_type']`` (categorical); other obs columns
  (``group``, ``sample``, ...) may follow.
- ``varm['geneset_mask']``: genes x terms annotation matrix I (scipy CSR, float32,
  1 where the gene is in the term); ``uns['geneset_terms']``: the full term names.
- ``uns['prepare']``: what preparation did (dataset, species, counts kept, ...).

:func:`check_ready_to_fit` checks prepared data against what the later steps will ask of
it (finite values, cells per condition class for the CV folds, covariates, the figures'
terms), so that a fit never starts on data a later step would refuse.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from iae_pipeline.samples import make_design
from interpretable_ae.genesets import MASK_KEY, TERMS_KEY, display_name

log = logging.getLogger(__name__)

KINDS = ("annotated", "sparse", "dense")
REQUIRED_OBS = ("condition", "cell_type")
REQUIRED_RUN = ("model", "setup", "seed")
UNANNOTATED = re.compile(r"^(sparse|dense)_\d+$")  # names of the unannotated factors


def make_factor_anndata(
    loadings: np.ndarray,
    obs: pd.DataFrame,
    factor_names: Sequence[str],
    kinds: Sequence[str],
    gene_weights: np.ndarray,
    gene_names: Sequence[str],
    active: Sequence[bool] | np.ndarray,
    run: Mapping[str, Any],
) -> ad.AnnData:
    """Build the contract AnnData; ``gene_weights`` is genes x factors (the decoder W)."""
    loadings = np.asarray(loadings, dtype=np.float32)
    gene_weights = np.asarray(gene_weights, dtype=np.float32)
    n_cells, n_factors = loadings.shape
    if gene_weights.shape != (len(gene_names), n_factors):
        raise ValueError(
            f"gene_weights has shape {gene_weights.shape}, expected "
            f"({len(gene_names)} genes, {n_factors} factors)"
        )
    var = pd.DataFrame(
        {
            "kind": pd.Categorical(list(kinds), categories=list(KINDS)),
            "active": np.asarray(active, dtype=bool),
            "weight_norm": np.linalg.norm(gene_weights, axis=0).astype(np.float64),
        },
        index=pd.Index([str(n) for n in factor_names], name="factor"),
    )
    out = ad.AnnData(X=loadings, obs=obs.copy(), var=var)
    out.varm["gene_weights"] = gene_weights.T.copy()
    out.uns["gene_names"] = np.asarray([str(g) for g in gene_names], dtype=object)
    out.uns["run"] = {k: _scalar(v) for k, v in run.items()}
    validate_factor_anndata(out)
    return out


def factors_from_estimator(results: ad.AnnData, run: Mapping[str, Any]) -> ad.AnnData:
    """The contract AnnData of an estimator's results AnnData
    (:meth:`interpretable_ae.model.InterpretableAutoencoder.to_anndata`): its
    hyper-parameters and training summary become ``uns['run']``, with ``run`` on top."""
    meta: dict[str, Any] = {"model": "autoencoder", "setup": ""}
    meta |= dict(results.uns.get("summary", {}))
    meta |= dict(results.uns.get("params", {}))
    meta |= dict(run)
    return make_factor_anndata(
        results.X,
        results.obs,
        list(results.var_names),
        results.var["kind"].astype(str).tolist(),
        np.ascontiguousarray(np.asarray(results.varm["gene_weights"]).T),
        list(results.uns["gene_names"]),
        results.var["active"].to_numpy(dtype=bool),
        meta,
    )


def validate_factor_anndata(adata: ad.AnnData, where: str = "factors") -> None:
    """Raise ValueError naming what is missing when ``adata`` breaks the contract."""
    problems: list[str] = []
    for key in REQUIRED_OBS:
        if key not in adata.obs:
            problems.append(f"obs['{key}'] is missing")
    for key in ("kind", "active", "weight_norm"):
        if key not in adata.var:
            problems.append(f"var['{key}'] is missing")
    if "kind" in adata.var and not set(adata.var["kind"].astype(str)) <= set(KINDS):
        problems.append(f"var['kind'] must be one of {KINDS}")
    if "gene_weights" not in adata.varm:
        problems.append("varm['gene_weights'] is missing")
    if "gene_names" not in adata.uns:
        problems.append("uns['gene_names'] is missing")
    elif "gene_weights" in adata.varm and adata.varm["gene_weights"].shape[1] != len(
        adata.uns["gene_names"]
    ):
        problems.append("varm['gene_weights'] columns do not match uns['gene_names']")
    run = adata.uns.get("run", {})
    for key in REQUIRED_RUN:
        if key not in run:
            problems.append(f"uns['run']['{key}'] is missing")
    if not adata.var_names.is_unique:
        problems.append("factor names (var_names) are not unique")
    if problems:
        raise ValueError(f"{where} breaks the factor contract: " + "; ".join(problems))


def _scalar(value: Any) -> Any:
    """h5ad-friendly plain scalars (numpy scalars -> Python, None -> '')."""
    if value is None:
        return ""
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_prepared(path: str | Path) -> ad.AnnData:
    """Read a ``prepared.h5ad`` and check its contract; errors name the file and the fix."""
    try:
        adata = ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(
            f"{path}: cannot be read as .h5ad ({err}); delete it and rerun to prepare it again"
        ) from None
    validate_prepared(adata, str(path))
    return adata


def validate_prepared(adata: ad.AnnData, where: str = "prepared data") -> None:
    """Raise ValueError naming what is missing when ``adata`` is not prepared data."""
    problems: list[str] = []
    for key in REQUIRED_OBS:
        if key not in adata.obs:
            problems.append(f"obs['{key}'] is missing")
    if MASK_KEY not in adata.varm:
        problems.append(f"varm['{MASK_KEY}'] is missing")
    if TERMS_KEY not in adata.uns:
        problems.append(f"uns['{TERMS_KEY}'] is missing")
    elif MASK_KEY in adata.varm and adata.varm[MASK_KEY].shape[1] != len(adata.uns[TERMS_KEY]):
        problems.append(f"varm['{MASK_KEY}'] columns do not match uns['{TERMS_KEY}']")
    if problems:
        raise ValueError(f"{where} is not prepared data: " + "; ".join(problems))


# ---- before the fits ----------------------------------------------------------------------


def check_finite(
    X: Any, where: str, obs_names: Sequence[str] | None = None, chunk: int = 4096
) -> None:
    """Refuse NaN or infinite values, checking every value: a sparse matrix's stored values,
    a dense (or backed) matrix in chunks of ``chunk`` cells (never a second full copy)."""
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


def term_key(name: str) -> str:
    """Case- and punctuation-insensitive key of a term's display name (how figures match)."""
    return re.sub(r"[^A-Z0-9]+", " ", display_name(str(name)).upper()).strip()


def _missing_terms(terms: Sequence[str], queries: Sequence[str]) -> list[str]:
    keys = {term_key(t) for t in terms}
    return [
        str(q)
        for q in queries
        if str(q) not in terms and term_key(q) not in keys and not UNANNOTATED.match(str(q))
    ]


def check_ready_to_fit(prepared: ad.AnnData, needs: Mapping[str, Any]) -> None:
    """Refuse prepared data that a later step would refuse, before any fit starts.

    ``needs`` is :func:`iae_pipeline.config.prefit_requirements`: ``source`` (the user's
    file or ``datasets.<name>``, named in the messages), ``dataset``, ``cv_folds``,
    ``figures``, ``covariates`` ({model: obs keys}) and ``samples`` (the sample design,
    or none). Checks: every value of ``X`` is finite; each condition class has at least
    ``cv_folds`` cells; covariates are obs columns without missing values; the figures'
    terms and patterns find prepared terms and Figure 3's cell types and groups exist; the
    sample key is a complete obs column whose samples fit the design (paired or not).
    """
    where, dataset = str(needs.get("source", "prepared data")), str(needs.get("dataset", ""))
    check_finite(prepared.X, f"{where}: the prepared expression", prepared.obs_names)
    _check_class_sizes(prepared, int(needs.get("cv_folds", 5)), where)
    for model, keys in (needs.get("covariates") or {}).items():
        _check_covariates(prepared.obs, list(keys), f"models.{model}.options.covariates", where)
    _check_figures(prepared, dict(needs.get("figures") or {}), dataset)
    if needs.get("samples"):  # the donor-level test's design (datasets.<name>.sample_key)
        make_design(prepared.obs, **needs["samples"], where=where)


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
