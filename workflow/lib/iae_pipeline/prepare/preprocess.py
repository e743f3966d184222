"""Preprocessing as in the paper, from a loaded dataset to the prepared-data contract.

Steps, in order (each a config key under ``preprocess``):

1. counts only: ``normalize_total(target_sum)`` then ``log1p`` (log-normalised and
   centred data are kept as they are);
2. mouse data: gene sets translated to mouse symbols through the ortholog table (or,
   without one, matched by upper case, a logged fallback); the fraction of data genes
   in the gene sets (overlap coefficient, :func:`check_overlap`) must reach
   ``min_overlap`` (else: wrong species or symbols);
3. keep the genes present in the annotation (steps 1-3: :func:`annotated_lognorm`);
4. keep ``n_top_genes`` highly variable genes (scanpy's Seurat flavour; centred data:
   the largest variances; ``None``: all);
5. ``subsample`` cells, seeded (``None``: all);
6. keep the terms with MORE than ``min_genes`` and FEWER than ``max_genes`` genes
   present, as the authors' ``intercode.utils.add_annotations`` and slalom's
   ``minGenes`` count (:func:`filter_terms`);
7. ``prune_genes``: drop the genes in no kept term, as the authors' notebooks
   (``adata._inplace_subset_var(I.sum(1) > 0)``) and slalom's ``pruneGenes`` do, so
   that every model sees the same genes.

``X`` is written as CSR float32, whatever it was read as.

A planted condition (the demo) is a step of its own before this one
(:mod:`iae_pipeline.prepare.simulation`). The result honours
:func:`iae_pipeline.contract.validate_prepared`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from iae_pipeline.contract import validate_prepared
from iae_pipeline.files import staged
from iae_pipeline.prepare.datasets import (
    CELL_TYPE,
    CENTRED,
    CONDITION,
    COUNTS,
    LOGNORM,
    DatasetError,
    load_dataset,
    two_classes,
)
from iae_pipeline.prepare.orthologs import read_orthologs, translate_by_case, translate_gene_sets
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import (
    GeneSetError,
    build_mask,
    merge_gene_sets,
    read_gmt,
    select_terms,
)

log = logging.getLogger(__name__)
SUBSAMPLE_STREAM = 1
SIMULATED = "simulated"  # the file role of a dataset with a planted condition

SPECIES = ("human", "mouse")
FALLBACK = "upper-case fallback"
PREPROCESS_KEYS = {
    "target_sum", "n_top_genes", "subsample", "min_genes", "max_genes", "min_overlap",
    "prune_genes",
}  # fmt: skip
# what annotated_lognorm reports that prepare records under its own names
PREPARE_STAT_KEYS = (
    "species", "data_type", "n_cells_in", "n_genes_in", "gene_overlap", "n_genes_annotated",
    "target_sum",
)  # fmt: skip


def normalize_log(adata: ad.AnnData, target_sum: float | None = 1e4) -> None:
    """Counts to ``log1p(normalize_total(target_sum))``, in place, float32.

    Parameters
    ----------
    adata
        Raw counts; replaced by their log-normalised values.
    target_sum
        Every cell's total after normalisation; ``None``: the median total count.
    """
    adata.X = adata.X.astype(np.float32, copy=False)
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)


def keep_genes(adata: ad.AnnData, keep: np.ndarray, chunk_rows: int = 16_384) -> ad.AnnData:
    """``adata`` restricted to the genes ``keep`` (booleans), reusing its CSR expression.

    The same object when every gene is kept. A CSR ``X`` is compacted in place, a block of
    cells at a time, and the result shares its buffers with ``adata``, which must not be used
    afterwards (by hand: scipy's column indexing allocates a whole second matrix, at 200,000
    cells the prepare job's peak). The result holds ``X``, ``obs``, ``var`` and ``uns``
    only, all that preparation uses; other ``X`` formats are copied as anndata slices them.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return adata
    X = adata.X
    if not (sp.issparse(X) and X.format == "csr"):
        return adata[:, keep].copy()
    X.sum_duplicates()  # canonical: sorted, unique column indices per cell
    remap = (np.cumsum(keep) - 1).astype(X.indices.dtype)
    indptr = np.zeros_like(X.indptr)
    written = 0
    for start in range(0, X.shape[0], chunk_rows):
        stop = min(start + chunk_rows, X.shape[0])
        a, b = int(X.indptr[start]), int(X.indptr[stop])
        cols = X.indices[a:b]
        kept = keep[cols]
        n = int(kept.sum())
        # written <= a: the block is read (copied by the mask) before its front is overwritten
        X.data[written : written + n] = X.data[a:b][kept]
        X.indices[written : written + n] = remap[cols[kept]]
        before = np.concatenate([[0], np.cumsum(kept)])
        indptr[start + 1 : stop + 1] = written + before[X.indptr[start + 1 : stop + 1] - a]
        written += n
    X = sp.csr_matrix(
        (X.data[:written], X.indices[:written], indptr), shape=(X.shape[0], int(keep.sum()))
    )
    return ad.AnnData(X=X, obs=adata.obs, var=adata.var.iloc[np.flatnonzero(keep)], uns=adata.uns)


def gene_sets_for_species(
    gene_sets: Mapping[str, Sequence[str]],
    data_genes: Sequence[str],
    species: str,
    orthologs: pd.DataFrame | None = None,
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Human gene sets in the data's species.

    Parameters
    ----------
    gene_sets
        ``{term: human symbols}``.
    data_genes
        The data's genes.
    species
        ``"human"`` (unchanged) or ``"mouse"``.
    orthologs
        A human-mouse table (:func:`iae_pipeline.prepare.orthologs.read_orthologs`); without
        it mouse genes are matched by upper case, as the authors' ``add_annotations``.

    Returns
    -------
    gene_sets : dict of str to list of str
        The sets in the data's species.
    stats : dict
        What the translation did, for the log.
    """
    if species not in SPECIES:
        raise DatasetError(f"species '{species}' is not supported; use one of {SPECIES}")
    if species == "human":
        return {t: list(g) for t, g in gene_sets.items()}, {"orthologs": "none (human)"}
    if orthologs is not None:
        sets, stats = translate_gene_sets(gene_sets, orthologs, data_genes)
        return sets, {"orthologs": "table", **stats}
    sets, stats = translate_by_case(gene_sets, data_genes)
    return sets, {"orthologs": FALLBACK, **stats}


def check_overlap(
    data_genes: Sequence[str],
    gene_sets: Mapping[str, Sequence[str]],
    min_overlap: float,
    where: str,
    n_set_genes: int | None = None,
) -> float:
    """The overlap coefficient of the data's genes and the gene sets' genes; an error below
    ``min_overlap``.

    The coefficient is ``|shared| / min(|data genes|, |gene-set genes|)``: near 1 when the
    symbols agree, whether the data hold 700 selected genes or 33,000 genes of a whole
    genome (of which a gene-set collection covers only a fifth), and near 0 for the wrong
    species or symbol type.

    Parameters
    ----------
    data_genes
        The data's genes.
    gene_sets
        ``{term: genes}``.
    min_overlap
        The smallest coefficient accepted.
    where
        Names the data in the message.
    n_set_genes
        Overrides the number of gene-set genes (for sets already reduced to the data's
        genes, as by the upper-case fallback).

    Returns
    -------
    float
        The coefficient.

    Raises
    ------
    GeneSetError
        A coefficient below ``min_overlap`` (another species or symbol type?), with
        examples of both kinds of names.
    """
    annotated = {g for genes in gene_sets.values() for g in genes}
    data = pd.Index(data_genes)
    shared = int(data.isin(list(annotated)).sum())
    n_set_genes = len(annotated) if n_set_genes is None else n_set_genes
    overlap = shared / max(1, min(len(data), n_set_genes))
    log.info(
        "%s: %d of %d data genes are in the gene sets (%d genes); overlap coefficient %.2f",
        where, shared, len(data), n_set_genes, overlap,
    )  # fmt: skip
    if overlap < min_overlap:
        raise GeneSetError(
            f"{where}: only {shared} of the {len(data)} data genes are among the {n_set_genes} "
            f"gene-set genes (overlap {overlap:.2f} < min_overlap {min_overlap:g}): data and gene "
            "sets use different species or symbols; set the dataset's species (mouse data need "
            "an ortholog table) or use gene sets with the data's gene symbols"
        )
    return overlap


def annotated_lognorm(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    data_type: str,
    species: str = "human",
    orthologs: pd.DataFrame | None = None,
    target_sum: float | None = 1e4,
    min_overlap: float = 0.2,
    name: str = "dataset",
    copy: bool = True,
) -> tuple[ad.AnnData, dict[str, list[str]], dict[str, Any]]:
    """Steps 1-3 of :func:`prepare`: log-normalised expression of the annotated genes
    (a copy; with ``copy=False``, ``adata`` is normalised in place and its expression reused:
    the caller must not use it afterwards).

    Parameters
    ----------
    adata
        A loaded dataset (not modified).
    gene_sets
        ``{term: human symbols}``.
    data_type
        ``"counts"``, ``"lognorm"`` or ``"centred"`` (what ``X`` holds).
    species, orthologs
        As for :func:`gene_sets_for_species`.
    target_sum
        As for :func:`normalize_log` (counts only).
    min_overlap
        As for :func:`check_overlap`.
    name
        The dataset's name, for messages.
    copy
        False: work on ``adata`` itself and reuse its expression (no second copy of the
        matrix); the caller must not use it afterwards.

    Returns
    -------
    adata : anndata.AnnData
        The genes in at least one set, log-normalised (a copy unless ``copy=False``).
    gene_sets : dict of str to list of str
        The sets in the data's species.
    stats : dict
        What was done, for ``uns['prepare']``.
    """
    if data_type not in (COUNTS, LOGNORM, CENTRED):
        raise DatasetError(
            f"{name}: data_type must be counts, lognorm or centred, got '{data_type}'"
        )
    if copy:
        adata = adata.copy()
    adata.var_names = adata.var_names.astype(str)
    adata.var_names_make_unique()
    n_cells_in, n_genes_in = adata.shape
    if data_type == COUNTS:
        normalize_log(adata, target_sum)
    log.info("%s: %d cells x %d genes, %s", name, n_cells_in, n_genes_in, data_type)

    sets, ortho = gene_sets_for_species(gene_sets, adata.var_names, species, orthologs)
    n_set_genes = ortho.get("set_genes") if ortho["orthologs"] == FALLBACK else None
    overlap = check_overlap(adata.var_names, sets, min_overlap, name, n_set_genes)
    annotated = {g for genes in sets.values() for g in genes}
    adata = keep_genes(adata, adata.var_names.isin(list(annotated)))
    stats = {
        "species": species,
        "data_type": data_type,
        "n_cells_in": n_cells_in,
        "n_genes_in": n_genes_in,
        "gene_overlap": round(overlap, 4),
        "n_genes_annotated": adata.n_vars,
        "target_sum": -1.0 if target_sum is None else float(target_sum),
        **ortho,
    }
    return adata, sets, stats


def prepare(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    data_type: str,
    species: str = "human",
    orthologs: pd.DataFrame | None = None,
    target_sum: float | None = 1e4,
    n_top_genes: int | None = 1000,
    subsample: int | None = None,
    min_genes: int = 10,
    max_genes: int | None = None,
    min_overlap: float = 0.2,
    prune_genes: bool = True,
    seed: int = 0,
    name: str = "dataset",
    copy: bool = True,
) -> ad.AnnData:
    """Prepared data (see :mod:`iae_pipeline.contract`) from a loaded dataset.

    Log-normalise (counts only), keep the genes of the gene sets, select the most variable
    ones, subsample cells, keep the terms within the size bounds and, with
    ``prune_genes``, drop the genes left in no kept term.

    Parameters
    ----------
    adata
        A loaded dataset with ``obs['condition']`` and ``obs['cell_type']``; not modified
        unless ``copy=False``.
    gene_sets
        ``{term: human symbols}``.
    data_type
        ``"counts"``, ``"lognorm"`` or ``"centred"`` (what ``X`` holds).
    species
        ``"human"`` or ``"mouse"`` (gene sets translated, see :func:`gene_sets_for_species`).
    orthologs
        A human-mouse table for mouse data.
    target_sum
        Every cell's total before log1p (counts only); ``None``: the median.
    n_top_genes
        Highly variable genes kept (scanpy's Seurat flavour; variance for centred data);
        ``None``: all.
    subsample
        Keep a seeded random subsample of this many cells (``None``: all).
    min_genes, max_genes
        Terms are kept with more than ``min_genes`` and fewer than ``max_genes`` genes
        present (both exclusive, as the authors' ``add_annotations``; ``None``: no upper
        bound).
    min_overlap
        As for :func:`check_overlap`.
    prune_genes
        Drop the genes in no kept term (the authors' and slalom's ``pruneGenes``).
    seed
        Seeds the subsample.
    name
        The dataset's name, for messages and ``uns['prepare']``.
    copy
        False: ``adata`` is changed and its expression reused (no second copy of the matrix;
        the workflow's prepare); the caller must not use it afterwards.

    Returns
    -------
    anndata.AnnData
        Prepared data: CSR float32 ``X``, the mask in ``varm['geneset_mask']``, the terms in
        ``uns['geneset_terms']``, what was done in ``uns['prepare']``.

    Raises
    ------
    DatasetError
        Missing or unusable condition or cell types, too few genes or terms left.
    GeneSetError
        The gene sets do not fit the data's species or symbols.

    Examples
    --------
    >>> from iae_pipeline.prepare.datasets import load_pbmc68k_demo
    >>> prepared = prepare(load_pbmc68k_demo(), gene_sets, data_type="lognorm",
    ...                    min_genes=19)  # doctest: +SKIP
    """
    adata, sets, stats = annotated_lognorm(
        adata,
        gene_sets,
        data_type=data_type,
        species=species,
        orthologs=orthologs,
        target_sum=target_sum,
        min_overlap=min_overlap,
        name=name,
        copy=copy,
    )
    n_annotated = adata.n_vars
    _check_obs(adata, name)
    adata = _highly_variable(adata, n_top_genes, data_type, name)
    n_hvg = adata.n_vars
    adata = _subsample(adata, subsample, seed, name)
    mask, terms = filter_terms(adata.var_names, sets, min_genes, max_genes)
    n_genes_kept = adata.n_vars
    if prune_genes:
        adata, mask = _prune(adata, mask, name)
    out = _prepared_anndata(adata, mask, terms)
    out.uns["prepare"] = {
        "dataset": name,
        **{k: stats[k] for k in ("species", "data_type", "n_cells_in", "n_genes_in")},
        "gene_overlap": stats["gene_overlap"],
        "n_genes_annotated": n_annotated,
        "n_genes_hvg": n_hvg,
        "n_genes_pruned": n_genes_kept - out.n_vars,
        "n_cells": out.n_obs,
        "n_genes": out.n_vars,
        "n_terms_in": len(gene_sets),
        "n_terms": len(terms),
        "target_sum": stats["target_sum"],
        "n_top_genes": -1 if n_top_genes is None else int(n_top_genes),
        "subsample": -1 if subsample is None else int(subsample),
        "min_genes": int(min_genes),
        "max_genes": -1 if max_genes is None else int(max_genes),
        "prune_genes": bool(prune_genes),
        "seed": int(seed),
        **{k: v for k, v in stats.items() if k not in PREPARE_STAT_KEYS},
    }
    log.info(
        "%s: prepared %d cells x %d genes (%d annotated, %d kept), %d of %d terms with "
        "more than %d%s genes present",
        name, out.n_obs, out.n_vars, n_annotated, n_hvg, len(terms), len(gene_sets),
        min_genes, "" if max_genes is None else f" and fewer than {max_genes}",
    )  # fmt: skip
    validate_prepared(out, name)
    return out


def _highly_variable(
    adata: ad.AnnData, n_top_genes: int | None, data_type: str, name: str
) -> ad.AnnData:
    """The ``n_top_genes`` highly variable genes (scanpy's Seurat flavour; centred data:
    the largest variances, since dispersions need log-normalised values)."""
    if n_top_genes is None or n_top_genes >= adata.n_vars:
        return adata
    if data_type == CENTRED:
        keep = top_variance_genes(adata.X, int(n_top_genes))
        log.info("%s: centred data: the %d genes of largest variance kept", name, keep.sum())
    else:
        sc.pp.highly_variable_genes(adata, n_top_genes=int(n_top_genes), flavor="seurat")
        keep = adata.var["highly_variable"].to_numpy()
    return keep_genes(adata, keep)


def _subsample(adata: ad.AnnData, subsample: int | None, seed: int, name: str) -> ad.AnnData:
    """A seeded random ``subsample`` of the cells (None: all)."""
    if subsample is None or subsample >= adata.n_obs:
        return adata
    # a stream of its own, so that it is independent of the simulation's draws even
    # when both use the same seed (the same stream would pick exactly the planted cells)
    rng = np.random.default_rng((int(seed), SUBSAMPLE_STREAM))
    cells = np.sort(rng.choice(adata.n_obs, size=int(subsample), replace=False))
    adata = adata[cells].copy()
    _check_obs(adata, f"{name} after subsampling")
    return adata


def _prune(adata: ad.AnnData, mask: sp.csr_matrix, name: str) -> tuple[ad.AnnData, sp.csr_matrix]:
    """Drop the genes in no kept term (the authors' ``add_annotations``)."""
    in_a_term = np.asarray(mask.getnnz(axis=1)).ravel() > 0
    n_genes = adata.n_vars
    adata, mask = keep_genes(adata, in_a_term), mask[in_a_term].tocsr()
    log.info(
        "%s: %d of %d genes are in a kept term; the other %d dropped (prune_genes)",
        name, adata.n_vars, n_genes, n_genes - adata.n_vars,
    )  # fmt: skip
    return adata, mask


def _prepared_anndata(adata: ad.AnnData, mask: sp.csr_matrix, terms: Sequence[str]) -> ad.AnnData:
    """The prepared data's layout (:mod:`iae_pipeline.contract`): CSR float32 expression,
    the mask and the terms."""
    out = ad.AnnData(
        X=sp.csr_matrix(adata.X, dtype=np.float32),
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=adata.var_names.copy()),
        uns={k: adata.uns[k] for k in ("simulation",) if k in adata.uns},
    )
    out.var["n_terms"] = np.asarray(mask.getnnz(axis=1)).ravel()
    out.varm[MASK_KEY] = mask.astype(np.float32).tocsr()
    out.uns[TERMS_KEY] = np.asarray(terms, dtype=object)
    return out


def filter_terms(
    genes: Sequence[str],
    gene_sets: Mapping[str, Sequence[str]],
    min_genes: int,
    max_genes: int | None = None,
) -> tuple[sp.csr_matrix, list[str]]:
    """The mask (genes x terms) of the terms with MORE than ``min_genes`` and FEWER than
    ``max_genes`` of their genes among ``genes``.

    Both bounds are exclusive, as in the authors' ``add_annotations(min_genes, max_genes)``
    (``I.sum(0) > min_genes``, ``< max_genes``) and slalom's ``minGenes``; the model
    package's :func:`~interpretable_ae.genesets.build_mask` counts inclusively, hence the
    shifted bounds.

    Parameters
    ----------
    genes
        The data's genes.
    gene_sets
        ``{term: genes}`` in the data's species.
    min_genes
        Keep terms with more genes present than this.
    max_genes
        Keep terms with fewer genes present than this (``None``: no bound).

    Returns
    -------
    mask : scipy.sparse.csr_matrix
        Genes x kept terms.
    terms : list of str
        The kept terms.

    Raises
    ------
    DatasetError
        Bounds that no term can meet.
    GeneSetError
        No term is left, naming the bound to change.

    Examples
    --------
    >>> mask, terms = filter_terms(["A", "B", "C"], {"S1": ["A", "B", "C"], "S2": ["A", "B"]}, 2)
    >>> terms
    ['S1']
    """
    if max_genes is not None and max_genes - 1 < min_genes + 1:
        raise DatasetError(
            f"preprocess: no term can have more than min_genes={min_genes} and fewer than "
            f"max_genes={max_genes} genes; raise max_genes or lower min_genes"
        )
    upper = None if max_genes is None else int(max_genes) - 1
    try:
        return build_mask(genes, gene_sets, min_genes=int(min_genes) + 1, max_genes=upper)
    except GeneSetError as err:
        if not str(err).startswith("no gene set has"):
            raise
        raise GeneSetError(
            f"no gene set has more than min_genes={min_genes} of its genes among the "
            f"{len(genes)} genes kept; check that the gene sets and the data use the same "
            "species and symbols, or lower preprocess.min_genes"
        ) from None


def top_variance_genes(X: np.ndarray | sp.spmatrix, n: int) -> np.ndarray:
    """The ``n`` genes of largest variance (ties: the first genes).

    For centred data, whose dispersion (variance / mean) is undefined; hand-written as
    scanpy's flavours all expect log-normalised values or counts.

    Parameters
    ----------
    X
        Cells x genes, dense or sparse.
    n
        How many genes to keep.

    Returns
    -------
    numpy.ndarray
        A boolean mask over the genes.
    """
    if sp.issparse(X):
        mean = np.asarray(X.mean(axis=0)).ravel()
        var = np.asarray(X.multiply(X).mean(axis=0)).ravel() - mean**2
    else:
        var = np.asarray(X, dtype=np.float64).var(axis=0)
    keep = np.zeros(var.size, dtype=bool)
    keep[np.argsort(-var, kind="stable")[:n]] = True
    return keep


def _check_obs(adata: ad.AnnData, where: str) -> None:
    for key in (CONDITION, CELL_TYPE):
        if key not in adata.obs:
            raise DatasetError(f"{where}: obs['{key}'] is missing; set the dataset's obs keys")
    adata.obs[CONDITION] = two_classes(adata.obs[CONDITION], f"{where} obs['{CONDITION}']")
    adata.obs[CELL_TYPE] = adata.obs[CELL_TYPE].astype(str).astype("category")


def dataset_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A prepare or simulate rule's named inputs, sorted by what they are.

    Parameters
    ----------
    inputs
        The rule's named inputs (``snakemake.input``).

    Returns
    -------
    dict
        ``files`` (role to path: the dataset's own files), ``gmt_paths`` (in the config's
        order) and ``orthologs`` (a path or ``None``).
    """
    genesets = inputs.get("genesets", [])
    return {
        "files": {
            role: str(path)
            for role, path in inputs.items()
            if role not in ("genesets", "orthologs", "code")
        },
        "gmt_paths": [genesets] if isinstance(genesets, str) else [str(g) for g in genesets],
        "orthologs": inputs.get("orthologs"),
    }


def read_simulated(path: str | Path) -> ad.AnnData:
    """Read the output of the planted-condition step (:mod:`iae_pipeline.prepare.simulation`).

    Parameters
    ----------
    path
        ``results/{dataset}/simulated.h5ad``.

    Returns
    -------
    anndata.AnnData
        Log-normalised cells with ``obs['condition']``.

    Raises
    ------
    DatasetError
        The file cannot be read, naming the fix.
    """
    try:
        return ad.read_h5ad(path)
    except (OSError, KeyError) as err:
        raise DatasetError(
            f"{path}: cannot be read as .h5ad ({err}); rerun the simulation"
        ) from None


def load_gene_sets(
    gmt_paths: Sequence[str | Path], specs: Sequence[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Read and merge the GMT files of a dataset.

    Parameters
    ----------
    gmt_paths
        The GMT files.
    specs
        The gene-set sources' config entries, in the same order: each one's ``name``,
        ``prefixes`` and ``drop_small_sets``.

    Returns
    -------
    dict of str to list of str
        The merged sets (:func:`~interpretable_ae.genesets.merge_gene_sets`).

    Raises
    ------
    GeneSetError
        Lists of different lengths, no file, a malformed file, or a term with different
        genes in two files.
    """
    if len(gmt_paths) != len(specs):
        raise GeneSetError(
            f"{len(gmt_paths)} GMT file(s) but {len(specs)} gene-set definition(s); the "
            "genesets input and params must be in the same order"
        )
    if not gmt_paths:
        raise GeneSetError("the dataset lists no gene sets; add datasets.<name>.genesets")
    collections = {}
    for path, spec in zip(gmt_paths, specs, strict=True):
        sets = read_gmt(path, drop_small=bool(spec.get("drop_small_sets", False)))
        sets = select_terms(sets, prefixes=list(spec.get("prefixes") or []))
        log.info("gene sets '%s': %d terms from %s", spec.get("name", path), len(sets), path)
        collections[str(spec.get("name", path))] = sets
    return merge_gene_sets(collections)


def prepare_from_config(
    dataset: Mapping[str, Any],
    files: Mapping[str, str],
    gmt_paths: Sequence[str | Path],
    geneset_specs: Sequence[Mapping[str, Any]],
    orthologs: str | Path | None,
    seed: int,
    output: str | Path,
    check: Callable[[ad.AnnData], None] | None = None,
) -> ad.AnnData:
    """Load, prepare and write one dataset from its config entries: the ``prepare`` rule.

    Parameters
    ----------
    dataset
        The dataset's settings (:func:`iae_pipeline.config.dataset_settings`).
    files
        Its files by role (:func:`dataset_inputs`); a ``simulated`` file is read instead of
        the dataset's own.
    gmt_paths, geneset_specs
        Its gene sets (:func:`load_gene_sets`).
    orthologs
        The human-mouse table, for mouse data.
    seed
        Seeds the subsample.
    output
        Where to write ``prepared.h5ad``; written via a temporary file, so it is whole or
        absent.
    check
        Runs on the prepared data before the write (e.g.
        :func:`iae_pipeline.prepare.checks.check_ready_to_fit`).

    Returns
    -------
    anndata.AnnData
        The prepared data, as written.

    Raises
    ------
    DatasetError
        An unknown ``preprocess`` key, or data that cannot be prepared.
    """
    name = str(dataset.get("name", "dataset"))
    opts = dict(dataset.get("preprocess") or {})
    unknown = set(opts) - PREPROCESS_KEYS
    if unknown:
        raise DatasetError(
            f"{name}: unknown preprocess key(s) {sorted(unknown)}; use {sorted(PREPROCESS_KEYS)}"
        )
    gene_sets = load_gene_sets(gmt_paths, geneset_specs)
    species = str(dataset.get("species", "human"))
    table = read_orthologs(orthologs) if orthologs and species == "mouse" else None
    if SIMULATED in files:  # the planted condition's step wrote log-normalised data
        adata, data_type = read_simulated(files[SIMULATED]), LOGNORM
    else:
        adata, data_type = load_dataset(dataset, files)
    prepared = prepare(
        adata,
        gene_sets,
        data_type=data_type,
        species=species,
        orthologs=table,
        seed=int(seed),
        name=name,
        copy=False,  # the loaded data are not used again: no second copy of the matrix
        **opts,
    )
    del adata
    prepared.uns["prepare"]["genesets"] = ",".join(str(s.get("name", "")) for s in geneset_specs)
    if check is not None:
        check(prepared)
    with staged(output, suffix=".part.h5ad") as tmp:
        prepared.write_h5ad(tmp)
    return prepared
