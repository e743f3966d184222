"""The two files every stage exchanges, and their one home: writers, readers, validators.

**The factor file**, ``factors.h5ad``: every factor model (the autoencoder, f-scLVM, ...)
writes one, so that scoring, the figures and the analyses never ask which model made it.

- ``X``: cells x factors loadings (float32, dense).
- ``obs``: the cells, with at least ``condition`` and ``cell_type`` copied from the
  prepared data.
- ``var_names``: factor names (full term names for annotated factors,
  ``sparse_0``, ``dense_0``, ... otherwise: :mod:`interpretable_ae.conventions`);
  ``var['kind']`` is one of ``annotated`` / ``sparse`` / ``dense``; ``var['active']``
  (bool) says whether the factor survived (group lasso or slalom's relevance switch);
  ``var['weight_norm']`` is the L2 norm of the factor's gene weights (decoder column).
- ``varm['gene_weights']``: factors x genes weights (the transposed decoder W),
  with the gene names in ``uns['gene_names']``.
- ``uns['run']``: run metadata, a flat dict of scalars/strings: at least ``model``,
  ``setup``, ``seed``; model specific keys (epochs, iterations, converged,
  hyper-parameters) besides. Never a wall time: a rerun with the same seed writes the same
  bytes; timings live in Snakemake's benchmark files (Table 1).

Written by :func:`make_factor_anndata` (:func:`factors_from_estimator` for the
autoencoder), checked by :func:`validate_factor_anndata`, read by :func:`read_factors`
(whole or backed), :func:`read_factor_files`, :func:`read_run` and
:func:`read_factor_var` (one group alone), :func:`factor_columns` (a few loadings).

**The prepared data** every model reads, ``prepared.h5ad``:

- ``X``: log-normalised expression, cells x genes (CSR float32; readers accept dense
  too); genes are the highly variable genes in at least one kept term.
- ``obs['condition']`` and ``obs['cell_type']`` (categorical); other obs columns
  (``group``, ``sample``, ...) may follow.
- ``varm['geneset_mask']``: genes x terms annotation matrix I (scipy CSR, float32,
  1 where the gene is in the term); ``uns['geneset_terms']``: the full term names.
- ``uns['prepare']``: what preparation did (dataset, species, counts kept, ...).

Read by :func:`read_prepared`, checked by :func:`validate_prepared`; what the later
steps will ask of it is checked before any fit by
:func:`iae_pipeline.prepare.checks.check_ready_to_fit`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem

from interpretable_ae.conventions import KINDS, MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import display_name

REQUIRED_OBS = ("condition", "cell_type")
REQUIRED_VAR = ("kind", "active", "weight_norm")
REQUIRED_RUN = ("model", "setup", "seed")


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
    """Build a factor file from a fitted model's results.

    Parameters
    ----------
    loadings
        Cells x factors, the factors' values of every cell.
    obs
        The cells' annotations (copied), with at least ``condition`` and ``cell_type``.
    factor_names
        One name per factor: full term names, ``sparse_<i>``, ``dense_<i>``.
    kinds
        One of ``annotated``, ``sparse``, ``dense`` per factor.
    gene_weights
        Genes x factors, the decoder W (stored transposed, factors x genes).
    gene_names
        The genes of ``gene_weights``' rows.
    active
        Per factor, whether the model kept it.
    run
        Run metadata, flat scalars and strings, with at least ``model``, ``setup`` and
        ``seed``; ``None`` values are stored as ``""``.

    Returns
    -------
    anndata.AnnData
        The factor file, checked by :func:`validate_factor_anndata`.

    Raises
    ------
    ValueError
        ``gene_weights`` does not fit the genes and factors, or the result breaks the contract.
    """
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


def factors_from_estimator(
    model: Any, run: Mapping[str, Any], *, loadings: bool = True
) -> ad.AnnData:
    """The factor file of a trained autoencoder, on its training data.

    Parameters
    ----------
    model
        A trained :class:`interpretable_ae.model.InterpretableAutoencoder` holding its data.
    run
        Run metadata put on top of the estimator's training summary and hyper-parameters
        (e.g. ``{"setup": "autoencoder"}``).
    loadings
        False: everything but the loadings (``X`` is None), for :func:`write_factor_file`
        to stream them from the encoder (never all cells x factors in memory).

    Returns
    -------
    anndata.AnnData
        The factor file (:func:`make_factor_anndata`).
    """
    meta: dict[str, Any] = {"model": "autoencoder", "setup": ""}
    meta |= model.summary() | model.params() | dict(run)
    table = model.factor_table()
    shape = (model.adata.n_obs, len(model.factor_names))
    factors = make_factor_anndata(
        model.get_latent_representation() if loadings else np.broadcast_to(np.float32(0), shape),
        model.adata.obs,
        list(model.factor_names),
        table["kind"].astype(str).tolist(),
        model.decoder_weights,
        list(model.genes),
        table["active"].to_numpy(dtype=bool),
        meta,
    )
    if not loadings:
        factors.X = None
    return factors


def write_factor_file(
    factors: ad.AnnData,
    path: str | Path,
    loadings: Iterable[tuple[int, int, np.ndarray]] | None = None,
) -> None:
    """Write a factor file; with ``loadings``, ``factors`` has no ``X`` and the loadings are
    written as they come, a block of cells at a time (by hand: anndata writes an ``X`` it
    holds whole, 240 MB at 200,000 cells x 300 factors, the fit's peak). The file reads
    back as one written whole (a dense float32 ``X``).

    Parameters
    ----------
    factors
        The factor AnnData (:func:`factors_from_estimator`, ``loadings=False`` when
        ``loadings`` is given).
    path
        The file to write.
    loadings
        ``(a, b, loadings of cells a..b)`` in order, covering every cell (e.g.
        ``InterpretableAutoencoder.latent_chunks()``).
    """
    if loadings is None:
        factors.write_h5ad(path)
        return
    if factors.X is not None:
        raise ValueError("write_factor_file: give loadings either in X or as chunks, not both")
    factors.write_h5ad(path)
    with h5py.File(path, "a") as handle:
        X = handle.create_dataset("X", shape=factors.shape, dtype=np.float32)
        X.attrs["encoding-type"], X.attrs["encoding-version"] = "array", "0.2.0"
        done = 0
        for a, b, rows in loadings:
            if a != done:
                raise ValueError(f"write_factor_file: loadings of cells {a}..{b} after {done}")
            X[a:b] = np.asarray(rows, dtype=np.float32)
            done = b
    if done != factors.n_obs:
        raise ValueError(f"write_factor_file: loadings for {done} of {factors.n_obs} cells")


def validate_factor_anndata(adata: ad.AnnData, where: str = "factors") -> None:
    """Check that an AnnData is a factor file (the module's first section).

    Parameters
    ----------
    adata
        The candidate.
    where
        Names it in the message (a path).

    Raises
    ------
    ValueError
        Every broken rule in one line: missing ``obs``, ``var``, ``varm`` or ``uns['run']``
        keys, unknown kinds, weights that do not fit the gene names, repeated factor names.
    """
    problems: list[str] = []
    for key in REQUIRED_OBS:
        if key not in adata.obs:
            problems.append(f"obs['{key}'] is missing")
    for key in REQUIRED_VAR:
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


def read_factors(path: str | Path, *, backed: bool = False) -> ad.AnnData:
    """Read a factor file and check it against the contract.

    Parameters
    ----------
    path
        A ``factors.h5ad``.
    backed
        Leave the loadings on disk until read (the cells, factors and run metadata are
        in memory): for figures that draw a few factors of many cells.

    Returns
    -------
    anndata.AnnData
        The factor file; an unreadable or non-conforming file raises ValueError naming it.
    """
    try:
        adata = ad.read_h5ad(path, backed="r" if backed else None)
    except (OSError, KeyError) as err:
        raise ValueError(
            f"{path}: cannot be read as an h5ad file ({err}); rerun the model"
        ) from None
    validate_factor_anndata(adata, where=str(path))
    return adata


def read_factor_files(models: Sequence[str], paths: Sequence[str]) -> dict[str, ad.AnnData]:
    """Read the factor files of several models.

    Parameters
    ----------
    models
        Model names.
    paths
        Their factor files, in the same order.

    Returns
    -------
    dict of str to anndata.AnnData
        ``{model: factors}``, each checked by :func:`read_factors`.

    Raises
    ------
    ValueError
        Lists of different lengths, or a file that cannot be read or breaks the contract.
    """
    models, paths = list(models), [str(p) for p in paths]
    if len(models) != len(paths):
        raise ValueError(
            f"{len(models)} model name(s) but {len(paths)} factor file(s); they must be aligned"
        )
    return {m: read_factors(p) for m, p in zip(models, paths, strict=True)}


def read_run(path: str | Path) -> dict[str, Any]:
    """``uns['run']`` of a factor file, read alone (the loadings stay on disk).

    Parameters
    ----------
    path
        A ``factors.h5ad``.

    Returns
    -------
    dict
        The run metadata (``model``, ``setup``, ``seed``, ...).

    Raises
    ------
    ValueError
        The file cannot be read or has no run metadata.
    """
    try:
        with h5py.File(path, "r") as handle:
            if "uns/run" not in handle:
                raise ValueError(
                    f"{path}: no uns['run'] in the factors file; rerun the model that wrote it"
                )
            return dict(read_elem(handle["uns/run"]))
    except OSError as err:
        raise ValueError(
            f"{path}: cannot be read as an h5ad file ({err}); rerun the model"
        ) from None


def read_factor_var(path: str | Path) -> pd.DataFrame:
    """``var`` of a factor file, read alone (the loadings stay on disk).

    Parameters
    ----------
    path
        A ``factors.h5ad``.

    Returns
    -------
    pandas.DataFrame
        Per factor: ``kind``, ``active``, ``weight_norm``.

    Raises
    ------
    ValueError
        The file cannot be read or its ``var`` lacks a contract column.
    """
    try:
        with h5py.File(path, "r") as handle:
            var = read_elem(handle["var"])
    except (OSError, KeyError) as err:
        raise ValueError(
            f"{path}: cannot be read as an h5ad file ({err}); rerun the model"
        ) from None
    missing = [c for c in REQUIRED_VAR if c not in var.columns]
    if missing:
        raise ValueError(f"{path} breaks the factor contract: var lacks {missing}; rerun the model")
    return var


def factor_columns(adata: ad.AnnData, names: Sequence[str]) -> np.ndarray:
    """The values of a few factors for every cell, read in one go (also from a backed file).

    Parameters
    ----------
    adata
        A factor file, in memory or backed.
    names
        Factor names (``var_names``).

    Returns
    -------
    numpy.ndarray
        Cells x ``names``, float64, in the order of ``names``.
    """
    if not names:
        return np.empty((adata.n_obs, 0))
    idx = adata.var_names.get_indexer(list(names))
    order = np.argsort(idx)
    block = adata.X[:, np.sort(idx)] if adata.isbacked else adata.X[:, idx[order]]
    block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
    out = np.empty_like(block, dtype=np.float64)
    out[:, order] = block
    return out


def read_prepared(path: str | Path) -> ad.AnnData:
    """Read a ``prepared.h5ad`` and check it (the module's second section).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    anndata.AnnData
        The prepared data.

    Raises
    ------
    ValueError
        The file cannot be read, or is not prepared data; the message names the file and
        the fix.
    """
    try:
        adata = ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(
            f"{path}: cannot be read as .h5ad ({err}); delete it and rerun to prepare it again"
        ) from None
    validate_prepared(adata, str(path))
    return adata


def validate_prepared(adata: ad.AnnData, where: str = "prepared data") -> None:
    """Check that an AnnData is prepared data (the module's second section).

    Parameters
    ----------
    adata
        The candidate.
    where
        Names it in the message (a path).

    Raises
    ------
    ValueError
        Every missing piece in one line: ``obs`` keys, the mask, the term names, or a mask
        that does not fit them.
    """
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


def term_key(name: str) -> str:
    """The key by which the config's term names find factors: case and punctuation ignored.

    Parameters
    ----------
    name
        A term name, full or as displayed.

    Returns
    -------
    str
        Upper case, runs of other characters as one space, an MSigDB prefix dropped.

    Examples
    --------
    >>> term_key("REACTOME_INTERFERON_SIGNALING") == term_key("Interferon signaling")
    True
    """
    return re.sub(r"[^A-Z0-9]+", " ", display_name(str(name)).upper()).strip()
