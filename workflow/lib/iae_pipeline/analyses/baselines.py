"""Classical baselines on the models' terms and cells, and where they agree with the models.

On the prepared data (the same cells, genes and terms the models see):

- **prerank GSEA** (``gseapy.prerank``): genes ranked by scanpy's
  ``rank_genes_groups`` statistic of the case against the control condition (a t-test by
  default), each term tested for enrichment at either end of the ranking; normalised
  enrichment score (NES), nominal p and FDR q by gene-set permutation (seeded);
- **per-cell score** (``scanpy.tl.score_genes``, the Seurat/Tirosh module score: mean
  expression of the term's genes minus that of expression-matched control genes), scored
  against the condition exactly as the models' factors are
  (:func:`iae_pipeline.score.scoring.score_factor`: univariate logistic regression, training and
  cross-validated accuracy, AUROC). scanpy's score rather than decoupler's: scanpy is
  already a dependency, and the score is the classical one.

:func:`agreement_table` puts both beside each model's rank of the term (its condition
score among annotated factors, the median over replicates when there are several) and says
for each term whether it is in the top ``n`` of the models, of the classical methods, or of
both.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.model_selection import StratifiedKFold

from iae_pipeline.contract import validate_prepared
from iae_pipeline.samples import condition_levels
from iae_pipeline.score.scoring import condition_labels, score_factor
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import display_name

log = logging.getLogger(__name__)

RANKINGS = ("t-test", "t-test_overestim_var", "wilcoxon")
#: the columns of a score table (results/{dataset}/scores.tsv) that the comparison reads
SCORE_COLUMNS = ("model", "term", "kind", "accuracy_train", "auroc")


def term_gene_sets(prepared: ad.AnnData) -> dict[str, list[str]]:
    """The prepared data's gene sets, reduced to the data's genes.

    Parameters
    ----------
    prepared
        Prepared data.

    Returns
    -------
    dict of str to list of str
        ``{term: genes}``.
    """
    validate_prepared(prepared)
    mask = sp.csc_matrix(prepared.varm[MASK_KEY])
    genes = prepared.var_names.astype(str)
    return {
        str(term): list(genes[mask[:, j].nonzero()[0]])
        for j, term in enumerate(prepared.uns[TERMS_KEY])
    }


def gene_ranking(
    prepared: ad.AnnData,
    *,
    method: str = "t-test",
    control: str | None = None,
    condition_key: str = "condition",
) -> pd.Series:
    """Every gene's statistic for the case against the control condition.

    Parameters
    ----------
    prepared
        Prepared data.
    method
        scanpy's ``rank_genes_groups`` method (``t-test``, ``t-test_overestim_var``,
        ``wilcoxon``).
    control
        The reference level (default: detected, :func:`iae_pipeline.samples.condition_levels`).
    condition_key
        The condition's column.

    Returns
    -------
    pandas.Series
        The scores, by gene, largest first.

    Raises
    ------
    ValueError
        An unknown method.
    """
    import scanpy as sc

    if method not in RANKINGS:
        raise ValueError(f"ranking method '{method}' is unknown; use one of {RANKINGS}")
    ctrl, case = condition_levels(prepared.obs[condition_key], control)
    work = ad.AnnData(X=prepared.X, obs=prepared.obs[[condition_key]].astype(str).copy())
    work.var_names = prepared.var_names
    sc.tl.rank_genes_groups(
        work, condition_key, groups=[case], reference=ctrl, method=method, n_genes=work.n_vars
    )
    table = sc.get.rank_genes_groups_df(work, group=case)
    ranking = table.set_index("names")["scores"].astype(float)
    ranking.index = ranking.index.astype(str)
    ranking.name = f"{case} vs {ctrl}"
    return ranking.sort_values(ascending=False, kind="stable")


def prerank_gsea(
    ranking: pd.Series,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    permutations: int = 1000,
    seed: int = 0,
    min_size: int = 1,
) -> pd.DataFrame:
    """gseapy's prerank GSEA of a gene ranking, for every gene set.

    Parameters
    ----------
    ranking
        :func:`gene_ranking`.
    gene_sets
        ``{term: genes}``.
    permutations
        Gene-set permutations of the null.
    seed
        Seeds them.
    min_size
        Sets with fewer genes in the ranking are left out.

    Returns
    -------
    pandas.DataFrame
        One row per term: ``gsea_nes``, ``gsea_pvalue``, ``gsea_fdr`` and ``gsea_rank`` (by
        FDR, then nominal p, then larger absolute NES).

    Raises
    ------
    ValueError
        Fewer than 10 permutations, or no set with enough genes.
    """
    import gseapy

    if permutations < 10:
        raise ValueError(f"permutations must be at least 10, got {permutations}")
    sets = {t: list(g) for t, g in gene_sets.items() if len(g) >= min_size}
    if not sets:
        raise ValueError("no gene set has enough genes in the data for GSEA")
    result = gseapy.prerank(
        rnk=ranking,
        gene_sets=sets,
        min_size=min_size,
        max_size=max(len(g) for g in sets.values()) + 1,
        permutation_num=int(permutations),
        seed=int(seed),
        threads=1,
        outdir=None,
        no_plot=True,
        verbose=False,
    ).res2d
    table = pd.DataFrame(
        {
            "term": result["Term"].astype(str).to_numpy(),
            "gsea_nes": pd.to_numeric(result["NES"], errors="coerce").to_numpy(),
            "gsea_pvalue": pd.to_numeric(result["NOM p-val"], errors="coerce").to_numpy(),
            "gsea_fdr": pd.to_numeric(result["FDR q-val"], errors="coerce").to_numpy(),
        }
    )
    table["_abs"] = -table["gsea_nes"].abs()
    table = table.sort_values(["gsea_fdr", "gsea_pvalue", "_abs", "term"], kind="stable")
    table["gsea_rank"] = np.arange(1, len(table) + 1)
    return table.drop(columns="_abs").reset_index(drop=True)


def score_genes_table(
    prepared: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    cv_folds: int = 5,
    seed: int = 0,
    control: str | None = None,
    condition_key: str = "condition",
) -> pd.DataFrame:
    """scanpy's ``score_genes`` per term and cell, scored against the condition as the models'
    factors are.

    Parameters
    ----------
    prepared
        Prepared data.
    gene_sets
        ``{term: genes}``.
    cv_folds
        Folds of the cross-validated accuracy and AUROC.
    seed
        Seeds the folds and ``score_genes``' reference genes.
    control
        The reference level (default: detected).
    condition_key
        The condition's column.

    Returns
    -------
    pandas.DataFrame
        One row per term: ``score_accuracy_train``, ``score_accuracy_cv``, ``score_auroc``,
        ``score_direction`` (+1 when the score is higher in the case) and ``score_rank``.
    """
    import scanpy as sc

    y = condition_labels(prepared, condition_key, min_per_class=cv_folds)
    _, case = condition_levels(prepared.obs[condition_key], control)
    is_case = prepared.obs[condition_key].astype(str).to_numpy() == case
    cv = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    work = ad.AnnData(X=prepared.X, obs=pd.DataFrame(index=prepared.obs_names.copy()))
    work.var_names = prepared.var_names
    rows = []
    for term, genes in gene_sets.items():
        sc.tl.score_genes(work, list(genes), score_name="_score", random_state=seed)
        score = work.obs["_score"].to_numpy(dtype=np.float64)
        acc_train, acc_cv, auroc = score_factor(score, y, cv)
        direction = 1 if score[is_case].mean() >= score[~is_case].mean() else -1
        rows.append(
            {
                "term": term,
                "score_accuracy_train": acc_train,
                "score_accuracy_cv": acc_cv,
                "score_auroc": auroc,
                "score_direction": direction,
            }
        )
    table = pd.DataFrame(rows)
    table = table.sort_values(
        ["score_accuracy_train", "score_auroc", "term"], ascending=[False, False, True]
    )
    table["score_rank"] = np.arange(1, len(table) + 1)
    return table.reset_index(drop=True)


def read_model_scores(path: str) -> pd.DataFrame:
    """Read a side-by-side score table with the columns the comparison reads.

    Parameters
    ----------
    path
        ``results/{dataset}/scores.tsv``.

    Returns
    -------
    pandas.DataFrame
        Its :data:`SCORE_COLUMNS`.

    Raises
    ------
    ValueError
        A missing file or column.
    """
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in SCORE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: score table lacks column(s) {missing}; regenerate it with scripts/score.py"
        )
    return table


def model_term_ranks(scores: pd.DataFrame, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Each model's rank of each annotated term by its condition score, among annotated
    factors.

    Terms are ranked by training accuracy, ties by AUROC, as
    :func:`iae_pipeline.score.scoring.score_factors`; with a ``replicate`` column the rank is
    the median over replicates.

    Parameters
    ----------
    scores
        A side-by-side score table.
    models
        The models (default: all in the table).

    Returns
    -------
    pandas.DataFrame
        Terms x models.
    """
    annotated = scores[scores["kind"].astype(str) == "annotated"].copy()
    if models is not None:
        annotated = annotated[annotated["model"].isin(list(models))]
    groups = ["model", "replicate"] if "replicate" in annotated else ["model"]
    annotated = annotated.sort_values(
        [*groups, "accuracy_train", "auroc", "term"],
        ascending=[True] * len(groups) + [False, False, True],
        kind="stable",
    )
    annotated["term_rank"] = annotated.groupby(groups).cumcount() + 1
    ranks = annotated.groupby(["term", "model"])["term_rank"].median().unstack("model")
    order = list(models) if models is not None else list(dict.fromkeys(scores["model"]))
    return ranks.reindex(columns=[m for m in order if m in ranks.columns])


def agreement_table(
    gsea: pd.DataFrame,
    cell_scores: pd.DataFrame,
    model_ranks: pd.DataFrame,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    top_n: int = 10,
) -> pd.DataFrame:
    """The classical methods and the models side by side, per term.

    Parameters
    ----------
    gsea
        :func:`prerank_gsea`.
    cell_scores
        :func:`score_genes_table`.
    model_ranks
        :func:`model_term_ranks`.
    gene_sets
        ``{term: genes}``.
    top_n
        The size of each method's top.

    Returns
    -------
    pandas.DataFrame
        One row per term: its genes, the classical results and ranks, each model's rank
        (``rank_<model>``), how many models and classical methods put it in their top
        ``top_n`` and ``agreement`` (``both``, ``models only``, ``classical only`` or empty).
        Terms in any top ``top_n`` first, by their best rank.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    table = pd.DataFrame({"term": list(gene_sets)})
    table["display_name"] = [display_name(t) for t in table["term"]]
    table["n_genes"] = [len(gene_sets[t]) for t in table["term"]]
    table = table.merge(gsea, on="term", how="left").merge(cell_scores, on="term", how="left")
    ranks = model_ranks.add_prefix("rank_").reset_index().rename(columns={"index": "term"})
    table = table.merge(ranks, on="term", how="left")
    model_cols = [f"rank_{m}" for m in model_ranks.columns]
    classical_cols = ["gsea_rank", "score_rank"]
    table["top_models"] = (table[model_cols] <= top_n).sum(axis=1).astype(int)
    table["top_classical"] = (table[classical_cols] <= top_n).sum(axis=1).astype(int)
    models_top, classical_top = table["top_models"] > 0, table["top_classical"] > 0
    table["agreement"] = np.select(
        [models_top & classical_top, models_top, classical_top],
        ["both", "models only", "classical only"],
        default="",
    )
    table["best_rank"] = table[model_cols + classical_cols].min(axis=1)
    table["_in_top"] = ~(models_top | classical_top)
    table = table.sort_values(["_in_top", "best_rank", "term"], kind="stable")
    return table.drop(columns=["_in_top"]).reset_index(drop=True)


def top_sets(table: pd.DataFrame, top_n: int) -> dict[str, set[str]]:
    """The top-``top_n`` terms of each method (classical and model) of an agreement table.

    Parameters
    ----------
    table
        :func:`agreement_table`.
    top_n
        The size of each top.

    Returns
    -------
    dict of str to set of str
        ``{method: terms}``.
    """
    cols = {"gsea": "gsea_rank", "score_genes": "score_rank"}
    cols |= {c.removeprefix("rank_"): c for c in table.columns if c.startswith("rank_")}
    return {name: set(table.loc[table[col] <= top_n, "term"]) for name, col in cols.items()}


def overlap_matrix(table: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """How many terms the top-``top_n`` lists of every pair of methods share.

    Parameters
    ----------
    table
        :func:`agreement_table`.
    top_n
        The size of each top.

    Returns
    -------
    pandas.DataFrame
        Methods x methods, counts.
    """
    sets = top_sets(table, top_n)
    names = list(sets)
    return pd.DataFrame(
        [[len(sets[a] & sets[b]) for b in names] for a in names], index=names, columns=names
    )


def run_baselines(
    prepared: ad.AnnData,
    scores: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    ranking: str = "t-test",
    permutations: int = 1000,
    cv_folds: int = 5,
    top_n: int = 10,
    seed: int = 0,
    control: str | None = None,
) -> pd.DataFrame:
    """GSEA and per-cell scores of every term, beside the models' ranks: the ``baselines``
    rule.

    Parameters
    ----------
    prepared
        Prepared data.
    scores
        The side-by-side score table (``results/{dataset}/scores.tsv``).
    models
        The models compared (default: all in ``scores``).
    ranking
        The gene ranking's method (:func:`gene_ranking`).
    permutations
        GSEA's permutations.
    cv_folds
        Folds of the per-cell scores' accuracy.
    top_n
        The size of each method's top.
    seed
        Seeds GSEA and the folds.
    control
        The reference level (default: detected).

    Returns
    -------
    pandas.DataFrame
        :func:`agreement_table`.
    """
    sets = term_gene_sets(prepared)
    ranked = gene_ranking(prepared, method=ranking, control=control)
    log.info("genes ranked by %s (%s); top: %s", ranking, ranked.name, list(ranked.index[:5]))
    gsea = prerank_gsea(ranked, sets, permutations=permutations, seed=seed)
    log.info("GSEA: %d terms, %d with FDR < 0.05", len(gsea), int((gsea["gsea_fdr"] < 0.05).sum()))
    cell_scores = score_genes_table(prepared, sets, cv_folds=cv_folds, seed=seed, control=control)
    ranks = model_term_ranks(scores, models)
    missing = sorted(set(ranks.index) - set(sets))
    if missing:
        raise ValueError(
            f"the score table has term(s) {missing[:3]} that the prepared data lack; "
            "the scores come from other data: rerun the models"
        )
    return agreement_table(gsea, cell_scores, ranks, sets, top_n=top_n)
