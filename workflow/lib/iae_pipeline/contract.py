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
  ``setup``, ``seed``, ``seconds``; model specific keys (epochs, iterations,
  converged, hyper-parameters) besides.

The prepared data every model reads, ``prepared.h5ad``:

- ``X``: log-normalised expression, cells x genes (CSR float32; readers accept dense
  too); genes are the highly variable genes in at least one kept term.
- ``obs['condition']`` and ``obs['cell_type']`` (categorical); other obs columns
  (``group``, ``sample``, ...) may follow.
- ``varm['geneset_mask']``: genes x terms annotation matrix I (scipy CSR, float32,
  1 where the gene is in the term); ``uns['geneset_terms']``: the full term names.
- ``uns['prepare']``: what preparation did (dataset, species, counts kept, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from interpretable_ae.genesets import MASK_KEY, TERMS_KEY

KINDS = ("annotated", "sparse", "dense")
REQUIRED_OBS = ("condition", "cell_type")
REQUIRED_RUN = ("model", "setup", "seed", "seconds")


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
