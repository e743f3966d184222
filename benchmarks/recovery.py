"""Delete and recover: does a factor take back annotated genes it was not told about?

The test of expiMap (Lotfollahi et al. 2023) for a model that refines its gene sets:
remove ``k`` annotated genes from a term's mask (the genes stay in the data), retrain, and
count how many of them come back among the term's top genes by absolute decoder weight.
"Top" is the term's original size in the data (``n_top``: as many genes as it had
annotated), counted among all genes; a zero weight never counts. As a chance level, ``k``
genes drawn outside the term's original annotation are counted the same way.

``scope`` says where the genes are removed: ``term`` (only from the term tested) or
``annotation`` (from every term: with nested gene sets, such as Reactome's interferon
terms, a gene removed from one term often stays annotated to another, whose factor then
explains it without any penalty, and the tested term has no reason to take it back).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from iae_pipeline.contract import validate_prepared
from iae_pipeline.fit.autoencoder import split_options
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.model import InterpretableAutoencoder

log = logging.getLogger(__name__)

SCOPES = ("term", "annotation")


def term_genes(adata: ad.AnnData, term: str) -> list[str]:
    """The genes annotated to ``term`` in prepared data (``varm['geneset_mask']``)."""
    validate_prepared(adata)
    terms = list(map(str, adata.uns[TERMS_KEY]))
    if term not in terms:
        raise ValueError(
            f"term '{term}' is not in uns['{TERMS_KEY}']; choose one of the data's terms"
        )
    column = sp.csc_matrix(adata.varm[MASK_KEY])[:, terms.index(term)]
    return list(adata.var_names[column.nonzero()[0]].astype(str))


def delete_genes(
    adata: ad.AnnData, term: str, genes: Sequence[str], scope: str = "term"
) -> sp.csr_matrix:
    """The annotation of ``adata`` with ``genes`` removed from ``term`` (``scope='term'``)
    or from every term (``scope='annotation'``); the data are untouched."""
    if scope not in SCOPES:
        raise ValueError(f"scope '{scope}' is unknown; use one of {SCOPES}")
    annotated = set(term_genes(adata, term))
    strangers = [g for g in genes if g not in annotated]
    if strangers:
        raise ValueError(
            f"gene(s) {strangers[:5]} are not annotated to '{term}'; nothing to delete"
        )
    mask = sp.lil_matrix(adata.varm[MASK_KEY], dtype=np.float32)
    rows = adata.var_names.get_indexer(list(genes))
    if scope == "term":
        mask[rows, list(map(str, adata.uns[TERMS_KEY])).index(term)] = 0
    else:
        mask[rows, :] = 0
    return mask.tocsr()


def recovery_counts(weights: pd.Series, genes: Sequence[str], n_top: int) -> tuple[int, list[int]]:
    """How many of ``genes`` are among the ``n_top`` genes with the largest absolute
    non-zero weight, and each one's rank (1 = largest; ties share the best rank)."""
    size = weights.abs()
    rank = size.rank(ascending=False, method="min")
    ranks = [int(rank[g]) for g in genes]
    top = [g for g, r in zip(genes, ranks, strict=True) if r <= n_top and size[g] > 0]
    return len(top), ranks


def delete_and_recover(
    adata: ad.AnnData,
    term: str,
    options: Mapping[str, Any],
    *,
    k: int = 5,
    deleted: Sequence[str] | None = None,
    scope: str = "term",
    n_top: int | None = None,
    seed: int = 0,
    deletion_seed: int | None = None,
) -> dict[str, Any]:
    """One round of the test on prepared data: delete ``k`` of the term's genes (drawn
    with ``deletion_seed``, default ``seed``, or the given ``deleted``), train the
    autoencoder with ``options`` (architecture and training, as a workflow model's) and
    ``seed``, and count the deleted genes and ``k`` control genes among the term's top
    ``n_top`` (default: the term's annotated genes in the data).

    Returns the counts (``recovered``, ``control``), the genes and their ranks, the
    number of genes the factor uses and whether it stayed active.
    """
    annotated = term_genes(adata, term)
    n_top = len(annotated) if n_top is None else int(n_top)
    rng = np.random.default_rng(seed if deletion_seed is None else deletion_seed)
    if deleted is None:
        if not 0 < k < len(annotated):
            raise ValueError(
                f"k={k}: '{term}' has {len(annotated)} annotated genes in the data; delete "
                "at least one and keep at least one"
            )
        deleted = sorted(rng.choice(annotated, size=k, replace=False).tolist())
    outside = [g for g in map(str, adata.var_names) if g not in set(annotated)]
    control = sorted(rng.choice(outside, size=len(deleted), replace=False).tolist())
    mask = delete_genes(adata, term, deleted, scope)
    arch, train = split_options(options)
    model = InterpretableAutoencoder(
        adata, mask=mask, terms=list(map(str, adata.uns[TERMS_KEY])), seed=seed, **arch
    )
    model.train(**train, seed=seed, progress=False)
    weights = model.get_loadings()[term]
    n_back, ranks = recovery_counts(weights, deleted, n_top)
    n_control, control_ranks = recovery_counts(weights, control, n_top)
    return {
        "term": term,
        "scope": scope,
        "seed": int(seed),
        "k": len(deleted),
        "n_top": n_top,
        "recovered": n_back,
        "control": n_control,
        "recovered_used": int((weights[list(deleted)] != 0).sum()),
        "control_used": int((weights[control] != 0).sum()),
        "deleted": ",".join(deleted),
        "ranks": ",".join(map(str, ranks)),
        "control_genes": ",".join(control),
        "control_ranks": ",".join(map(str, control_ranks)),
        "n_used": int((weights != 0).sum()),
        "active": bool((weights != 0).any()),
    }
