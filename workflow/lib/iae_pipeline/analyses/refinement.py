"""Gene-set refinement: the genes each annotated factor keeps, gains and loses.

A factor *uses* a gene when the gene's weight (the decoder column, ``varm['gene_weights']``
of a contract ``factors.h5ad``) reaches ``min_weight`` times the factor's largest absolute
weight (``min_weight = 0``: any non-zero weight). Against the term's annotation (the
prepared data's ``varm['geneset_mask']``) every used or annotated gene is

- ``kept``: annotated and used;
- ``gained``: used although outside the annotation (what the factor learned beyond it);
- ``lost``: annotated but not used.

The autoencoder's weights outside the annotation are exactly zero unless the data pay for
them (the L1 proximal step), so ``min_weight = 0`` is its own notion of "used"; f-scLVM's
weights are posterior means ``E[W] Q(Z)`` that never reach zero, so a relative threshold is
needed there (on the demo, 1 % of the largest weight gives slalom's own count of genes with
``Q(Z) > 0.5``). Several replicates of one model (the same model fitted with other seeds)
are summarised per gene: in how many of the replicates where the factor is active the gene
has that status, its mean weight and its median rank by absolute weight.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from iae_pipeline.contract import validate_factor_anndata, validate_prepared
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import display_name

log = logging.getLogger(__name__)

STATUSES = ("kept", "gained", "lost")
GENE_COLUMNS = (
    "term",
    "display_name",
    "gene",
    "status",
    "in_annotation",
    "count",
    "n_replicates",
    "fraction",
    "mean_weight",
    "median_rank",
)
TERM_COLUMNS = (
    "term",
    "display_name",
    "weight_norm",
    "n_replicates",
    "n_annotated",
    "n_kept",
    "n_gained",
    "n_lost",
    "top_gained",
    "lost",
)


def _dense(x: np.ndarray | sp.spmatrix) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def annotation_frame(prepared: ad.AnnData) -> pd.DataFrame:
    """The prepared data's annotation as a table.

    Parameters
    ----------
    prepared
        Prepared data (:mod:`iae_pipeline.contract`).

    Returns
    -------
    pandas.DataFrame
        Genes x terms, boolean (True: the gene is in the term's set).
    """
    validate_prepared(prepared)
    return pd.DataFrame(
        _dense(prepared.varm[MASK_KEY]) != 0,
        index=prepared.var_names.astype(str),
        columns=list(map(str, prepared.uns[TERMS_KEY])),
    )


def _mean_norms(runs: Sequence[ad.AnnData]) -> pd.Series:
    """Each factor's decoder L2 norm, averaged over the runs."""
    return pd.concat([f.var["weight_norm"].astype(float) for f in runs], axis=1).mean(axis=1)


def used_genes(weights: np.ndarray, min_weight: float = 0.0) -> np.ndarray:
    """Which genes each factor uses.

    Parameters
    ----------
    weights
        Genes x factors.
    min_weight
        A factor uses a gene when the gene's absolute weight is at least ``min_weight``
        times the column's largest absolute weight, and not zero.

    Returns
    -------
    numpy.ndarray
        Genes x factors, boolean.

    Examples
    --------
    >>> import numpy as np
    >>> used_genes(np.array([[1.0], [0.005], [0.0]]), min_weight=0.01).ravel().tolist()
    [True, False, False]
    """
    if not 0 <= min_weight < 1:
        raise ValueError(
            f"min_weight must be in [0, 1), got {min_weight}; set analyses.refinement.min_weight"
        )
    size = np.abs(np.asarray(weights, dtype=np.float64))
    return (size > 0) & (size >= min_weight * size.max(axis=0, keepdims=True))


def _replicate_status(
    factors: ad.AnnData, annotation: pd.DataFrame, min_weight: float, where: str
) -> dict[str, pd.DataFrame]:
    """Per active annotated factor of one run: genes x (status, weight, rank)."""
    genes = pd.Index(list(map(str, factors.uns["gene_names"])))
    missing = genes.difference(annotation.index)
    if len(missing):
        raise ValueError(
            f"{where}: {len(missing)} gene(s) of the factors (e.g. {list(missing[:3])}) are not "
            "in the prepared data; the factors were fitted on other data: rerun the model"
        )
    weights = np.asarray(factors.varm["gene_weights"], dtype=np.float64).T  # genes x factors
    used = used_genes(weights, min_weight)
    var = factors.var
    out: dict[str, pd.DataFrame] = {}
    for k, term in enumerate(map(str, factors.var_names)):
        if str(var["kind"].iloc[k]) != "annotated" or not bool(var["active"].iloc[k]):
            continue
        if term not in annotation.columns:
            raise ValueError(
                f"{where}: annotated factor '{term}' is not a term of the prepared data; the "
                "factors were fitted on other data: rerun the model"
            )
        column = annotation[term]
        inside_all = column.to_numpy(dtype=bool)
        inside = column.reindex(genes, fill_value=False).to_numpy(dtype=bool)
        unmodelled = int(inside_all.sum() - inside.sum())
        if unmodelled:
            log.info("%s: %s: %d annotated gene(s) not modelled", where, term, unmodelled)
        w = weights[:, k]
        rank = pd.Series(-np.abs(w)).rank(method="min").to_numpy()
        status = np.full(len(genes), "", dtype=object)
        status[inside & used[:, k]] = "kept"
        status[~inside & used[:, k]] = "gained"
        status[inside & ~used[:, k]] = "lost"
        keep = status != ""
        out[term] = pd.DataFrame(
            {"status": status[keep], "weight": w[keep], "rank": rank[keep]},
            index=genes[keep],
        )
    return out


def refinement_table(
    runs: Sequence[ad.AnnData],
    prepared: ad.AnnData,
    *,
    min_weight: float = 0.01,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per annotated factor, the genes a model keeps, gains and loses relative to its gene set.

    Parameters
    ----------
    runs
        Replicates of one model: factor files fitted on ``prepared``.
    prepared
        The prepared data (the annotation).
    min_weight
        See :func:`used_genes`.
    names
        Names of the runs, for messages.

    Returns
    -------
    pandas.DataFrame
        One row per term and gene that is kept, gained or lost in at least one replicate:
        ``count`` (replicates where the gene has this status), ``n_replicates``
        (replicates where the factor is active), ``fraction``, ``mean_weight`` (signed,
        over those active replicates; 0 where unused), ``median_rank`` (by absolute weight
        among all genes, 1 = largest, over the replicates with this status). Factors
        switched off in every replicate have no rows. Rows: terms by decreasing mean weight
        norm, then kept, gained, lost, each by decreasing count and increasing rank.

    Raises
    ------
    ValueError
        No run, or runs whose genes do not match the prepared data.
    """
    if not runs:
        raise ValueError("no factor files given; the refinement needs at least one run")
    names = [f"run {i}" for i in range(len(runs))] if names is None else list(map(str, names))
    annotation = annotation_frame(prepared)
    per_run = []
    for factors, name in zip(runs, names, strict=True):
        validate_factor_anndata(factors, where=name)
        per_run.append(_replicate_status(factors, annotation, min_weight, name))
    norms = _mean_norms(runs)
    terms = sorted({t for r in per_run for t in r}, key=lambda t: (-norms.get(t, 0.0), t))
    frames = []
    for term in terms:
        present = [r[term] for r in per_run if term in r]
        n_rep = len(present)
        long = (
            pd.concat([p.assign(replicate=i) for i, p in enumerate(present)], names=["gene"])
            .rename_axis("gene")
            .reset_index()
        )
        weight_sum = long.groupby("gene")["weight"].sum()  # unused genes weigh 0
        grouped = long.groupby(["gene", "status"])
        table = pd.DataFrame(
            {"count": grouped.size(), "median_rank": grouped["rank"].median()}
        ).reset_index()
        table["mean_weight"] = table["gene"].map(weight_sum) / n_rep
        table["n_replicates"] = n_rep
        table["fraction"] = table["count"] / n_rep
        table["in_annotation"] = table["status"].isin(["kept", "lost"])
        table["status"] = pd.Categorical(table["status"], categories=list(STATUSES))
        table = table.sort_values(
            ["status", "count", "median_rank", "gene"],
            ascending=[True, False, True, True],
            kind="stable",
        )
        table.insert(0, "display_name", display_name(term))
        table.insert(0, "term", term)
        frames.append(table)
    if not frames:
        log.warning("no active annotated factor in any run: the refinement table is empty")
        return pd.DataFrame(columns=list(GENE_COLUMNS))
    out = pd.concat(frames, ignore_index=True)[list(GENE_COLUMNS)]
    out["status"] = out["status"].astype(str)
    return out


def term_summary(
    table: pd.DataFrame, runs: Sequence[ad.AnnData], *, top_genes: int = 5
) -> pd.DataFrame:
    """One row per term of a :func:`refinement_table`.

    Parameters
    ----------
    table
        :func:`refinement_table`.
    runs
        The same replicates.
    top_genes
        Gained genes listed per term.

    Returns
    -------
    pandas.DataFrame
        Mean weight norm, annotated genes, mean numbers of kept, gained and lost genes per
        replicate, the ``top_genes`` gained genes (most frequent, then best rank;
        ``GENE (fraction)`` with several replicates) and the lost genes.
    """
    if table.empty:
        return pd.DataFrame(columns=list(TERM_COLUMNS))
    norms = _mean_norms(runs)
    rows = []
    for term, part in table.groupby("term", sort=False):
        n_rep = int(part["n_replicates"].iloc[0])
        per_status = part.groupby("status")["count"].sum() / n_rep

        def listing(status: str, n: int | None) -> str:
            genes = part[part["status"] == status].head(n)
            if n_rep == 1:
                return ", ".join(genes["gene"])
            return ", ".join(f"{g} ({f:.0%})" for g, f in zip(genes["gene"], genes["fraction"]))

        annotated = part[part["in_annotation"]]["gene"].nunique()
        rows.append(
            {
                "term": term,
                "display_name": display_name(str(term)),
                "weight_norm": float(norms.get(term, np.nan)),
                "n_replicates": n_rep,
                "n_annotated": int(annotated),
                "n_kept": float(per_status.get("kept", 0.0)),
                "n_gained": float(per_status.get("gained", 0.0)),
                "n_lost": float(per_status.get("lost", 0.0)),
                "top_gained": listing("gained", top_genes),
                "lost": listing("lost", None),
            }
        )
    return pd.DataFrame(rows, columns=list(TERM_COLUMNS))


def top_refined_terms(
    summary: pd.DataFrame, terms: Sequence[str] | None = None, n: int = 6
) -> tuple[list[str], list[str]]:
    """The terms a refinement figure draws.

    Parameters
    ----------
    summary
        :func:`term_summary`.
    terms
        Exact term names to draw; ``None``: the ``n`` with the largest weight norm.
    n
        How many terms without ``terms``.

    Returns
    -------
    found : list of str
        The terms drawn.
    not_found : list of str
        The requested terms that are not in ``summary``.
    """
    if terms:
        present = set(summary["term"])
        return [t for t in terms if t in present], [t for t in terms if t not in present]
    best = summary.sort_values("weight_norm", ascending=False, kind="stable")
    return best["term"].head(n).tolist(), []
