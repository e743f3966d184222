"""Term and group scores calibrated against the random-mask null.

Inputs are score tables (one row per factor and fit, :mod:`iae_pipeline.score.scoring`):
the model's replicates (fits on the real mask) and its random fits (fits on masks whose
gene rows are permuted). For one score column:

1. **groups** (:mod:`.term_groups`) are formed from the prepared mask, restricted to the
   terms the model fitted; a group's score in a fit is the sum of its members' scores for
   an additive score (the response share: the part of the response the group's factors
   carry together) and the best member's otherwise (accuracy, AUROC);
2. every group and every term gets its mean and sd over the replicates and two p-values:
   against the random units of its size (``pvalue_mask``: a *competitive* null, random
   genes carry as much; :mod:`.null`) and, for the response share, against the same unit
   with the labels permuted within samples (``pvalue_label``: a *self-contained* null, the
   unit carries no response; Goeman & Bühlmann 2007). A unit is claimed only when both are
   rejected: ``pvalue`` is the larger of the two (an intersection-union test, Berger 1982),
   adjusted by Benjamini–Hochberg over the model's groups, and separately over its terms.
   Why both (measured, docs/analyses.md): with labels permuted, the random-mask p alone let
   some unit through in 3 % of the simulations' permutations (12 % with fewer random fits),
   as one fit's units share its noise; the label p is exact under permutation, and with
   both the rate fell to 0.5–1.5 %;
3. within each group, how often each member leads (has the group's best score) over the
   replicates: the split a reader needs before naming one term.

Only annotated factors take part (unannotated ones have no genes to permute).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from iae_pipeline.analyses.null import NullSettings, null_pvalues, tail_pvalue
from iae_pipeline.analyses.term_groups import term_groups

ADDITIVE = ("response_share",)  # scores that add up over a group's factors
# the null and the claim, in both tables
TEST_COLUMNS = (
    "n_null",
    "null_q05",
    "null_median",
    "null_q95",
    "pvalue_mask",
    "p_method",
    "pvalue_label",
    "pvalue",
    "padj",
    "significant",
)
GROUP_COLUMNS = (
    "score",
    "rank",
    "group",
    "group_name",
    "members",
    "genes",
    "replicates",
    "score_mean",
    "score_sd",
    *TEST_COLUMNS,
    "leader",
    "leader_count",
    "member_terms",
)
TERM_COLUMNS = (
    "score",
    "term",
    "group",
    "group_name",
    "genes",
    "replicates",
    "score_mean",
    "score_sd",
    "leads",
    *TEST_COLUMNS,
)


@dataclass(frozen=True)
class GroupRule:
    """How terms are grouped (:func:`iae_pipeline.analyses.term_groups.term_groups`)."""

    rule: str = "jaccard"
    threshold: float = 0.4
    linkage: str = "single"


@dataclass(frozen=True)
class Calibration:
    """The calibrated tables of one model and score."""

    groups: pd.DataFrame  # one row per group, ranked by score
    terms: pd.DataFrame  # one row per term
    split: pd.DataFrame  # the members of every multi-term group, with their lead counts
    values: pd.DataFrame  # every replicate's value: level (group / term), unit, replicate


def score_matrix(scores: pd.DataFrame, fit: str, score: str, terms: Sequence[str]) -> np.ndarray:
    """Fits x terms matrix of ``score`` (fits in order of the ``fit`` column)."""
    table = scores[scores["kind"].astype(str) == "annotated"]
    wide = table.pivot_table(index=fit, columns="term", values=score, aggfunc="first")
    missing = [t for t in terms if t not in wide.columns]
    if missing:
        raise ValueError(
            f"score tables lack term(s) {missing[:3]} in some fit; every fit of a model must "
            "score the same terms (rerun the fits of this model)"
        )
    gaps = wide[list(terms)].isna()
    if gaps.any().any():
        where, term = gaps.stack()[lambda v: v].index[0]
        raise ValueError(
            f"{fit} {where} has no '{score}' for term {term}; every fit of a model must score "
            "the same terms (rerun that fit and its scoring)"
        )
    return wide[list(terms)].to_numpy(dtype=np.float64)


def group_values(values: np.ndarray, member: np.ndarray, additive: bool) -> np.ndarray:
    """Fits x groups from fits x terms: the sum (additive) or the maximum over members."""
    if additive:
        return values @ member
    out = np.full((values.shape[0], member.shape[1]), -np.inf)
    for j in range(member.shape[1]):
        out[:, j] = values[:, member[:, j] > 0].max(axis=1)
    return out


def model_terms(real: pd.DataFrame) -> list[str]:
    """The annotated terms a model fitted, in the order of its first replicate's table."""
    table = real[real["kind"].astype(str) == "annotated"]
    first = table[table["replicate"] == table["replicate"].min()]
    return first["term"].astype(str).tolist()


def calibrate(
    real: pd.DataFrame,
    null: pd.DataFrame,
    mask: object,
    mask_terms: Sequence[str],
    *,
    score: str = "response_share",
    label_null: Sequence[pd.DataFrame] | None = None,
    rule: GroupRule | None = None,
    settings: NullSettings | None = None,
) -> Calibration:
    """Calibrate one score of one model (module docstring).

    Parameters
    ----------
    real
        Score tables of the replicates (columns ``replicate``, ``term``, ``kind``,
        ``score``).
    null
        Score tables of the random fits (a ``fit`` column numbers them).
    mask, mask_terms
        The prepared genes x terms mask and its terms.
    score
        The score column.
    label_null
        For the response share: one table per replicate (rows: label permutations,
        columns: factors) of the shares under permuted labels; None: no label p-value.
    rule, settings
        Term grouping and null settings.

    Returns
    -------
    Calibration
        Groups, terms and the split within groups.
    """
    rule, settings = rule or GroupRule(), settings or NullSettings()
    terms = model_terms(real)
    groups, member = _groups(mask, mask_terms, terms, rule)
    numbers = sorted(groups["group"].unique())
    R = score_matrix(real, "replicate", score, terms)
    N = score_matrix(null, "fit", score, terms)
    additive = score in ADDITIVE
    RG, NG = group_values(R, member, additive), group_values(N, member, additive)
    info = groups.drop_duplicates("group").set_index("group").loc[numbers]
    genes_t = groups["term_genes"].to_numpy(dtype=float)
    genes_g, members_g = info["group_genes"].to_numpy(float), info["group_size"].to_numpy(float)
    k = N.shape[0]
    p_terms = null_pvalues(R.mean(0), genes_t, N.ravel(), np.tile(genes_t, k), settings=settings)
    p_groups = null_pvalues(
        RG.mean(0), genes_g, NG.ravel(), np.tile(genes_g, k),
        members=members_g, null_members=np.tile(members_g, k), settings=settings,
    )  # fmt: skip
    if label_null is not None and score in ADDITIVE:
        L = np.mean([np.asarray(t[terms], dtype=np.float64) for t in label_null], axis=0)
        p_terms = _with_label_p(p_terms, R.mean(0), L, settings)
        p_groups = _with_label_p(p_groups, RG.mean(0), L @ member, settings)
    else:
        p_terms, p_groups = (_with_label_p(t, None, None, settings) for t in (p_terms, p_groups))
    leads = _lead_counts(R, member)
    term_table = _term_table(score, terms, groups, R, leads, p_terms, settings.alpha)
    group_table = _group_table(score, info, RG, p_groups, term_table, settings.alpha)
    values = pd.concat(
        [_long("group", [str(g) for g in numbers], RG, score), _long("term", terms, R, score)],
        ignore_index=True,
    )
    return Calibration(group_table, term_table, _split(group_table, term_table), values)


def _groups(mask, mask_terms, terms, rule: GroupRule) -> tuple[pd.DataFrame, np.ndarray]:
    """The groups of the model's ``terms`` (from their columns of the mask) and the terms x
    groups membership matrix."""
    column = {t: j for j, t in enumerate(map(str, mask_terms))}
    absent = [t for t in terms if t not in column]
    if absent:
        raise ValueError(f"term(s) {absent[:3]} are not in the prepared mask; rerun the fits")
    sub = mask[:, [column[t] for t in terms]]
    groups = term_groups(sub, terms, rule=rule.rule, threshold=rule.threshold,
                         method=rule.linkage)  # fmt: skip
    member = np.zeros((len(terms), groups["group"].nunique()))
    member[np.arange(len(terms)), groups["group"].to_numpy() - 1] = 1.0
    return groups, member


def _long(level: str, units: Sequence[str], values: np.ndarray, score: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "score": score,
            "level": level,
            "unit": np.tile(list(units), values.shape[0]),
            "replicate": np.repeat(np.arange(values.shape[0]), values.shape[1]),
            "value": values.ravel(),
        }
    )


def _with_label_p(table, observed, permuted, settings: NullSettings) -> pd.DataFrame:
    """The random-mask p-values (``pvalue``) as ``pvalue_mask``, the label-permutation
    p-values of the units (``permuted``: permutations x units) as ``pvalue_label``, and
    their maximum as ``pvalue`` with its Benjamini–Hochberg ``padj``."""
    out = table.rename(columns={"pvalue": "pvalue_mask"}).drop(columns=["padj"])
    if permuted is None:
        out["pvalue_label"] = np.nan
        out["pvalue"] = out["pvalue_mask"]
    else:
        out["pvalue_label"] = [
            tail_pvalue(permuted[:, u], observed[u], settings)[0] for u in range(len(observed))
        ]
        out["pvalue"] = np.maximum(out["pvalue_mask"], out["pvalue_label"])
    out["padj"] = np.nan
    tested = out["pvalue"].notna().to_numpy()
    if tested.any():
        out.loc[tested, "padj"] = multipletests(out.loc[tested, "pvalue"], method="fdr_bh")[1]
    return out


def _lead_counts(values: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Per term: in how many fits it has its group's highest score."""
    counts = np.zeros(values.shape[1], dtype=int)
    for j in range(member.shape[1]):
        idx = np.flatnonzero(member[:, j] > 0)
        best = idx[np.argmax(values[:, idx], axis=1)]
        counts += np.bincount(best, minlength=values.shape[1])
    return counts


def _spread(values: np.ndarray) -> dict:
    """Per unit (column) over the replicates (rows): their number, mean and sd."""
    return {
        "replicates": values.shape[0],
        "score_mean": values.mean(0),
        "score_sd": values.std(0, ddof=1) if values.shape[0] > 1 else np.nan,
    }


def _tested(table: pd.DataFrame, pvals: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """``table`` with its units' null columns (``pvals``, in the same order) and the claim."""
    out = pd.concat([table, pvals.reset_index(drop=True)], axis=1)
    out["significant"] = out["padj"] < alpha
    return out


def _term_table(score, terms, groups, R, leads, pvals, alpha) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "score": score,
            "term": terms,
            "group": groups["group"].to_numpy(),
            "group_name": groups["group_name"].to_numpy(),
            "genes": groups["term_genes"].to_numpy(),
            **_spread(R),
            "leads": leads,
        }
    )
    out = _tested(out, pvals, alpha)
    return out.sort_values(["score_mean"], ascending=False, kind="stable")[list(TERM_COLUMNS)]


def _group_table(score, info, RG, pvals, terms, alpha) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "score": score,
            "group": info.index.to_numpy(),
            "group_name": info["group_name"].to_numpy(),
            "members": info["group_size"].to_numpy(),
            "genes": info["group_genes"].to_numpy(),
            **_spread(RG),
        }
    )
    out = _tested(out, pvals, alpha)
    best = terms.sort_values(["leads", "score_mean"], ascending=False, kind="stable")
    lead = best.drop_duplicates("group").set_index("group")
    out["leader"] = out["group"].map(lead["term"])
    out["leader_count"] = out["group"].map(lead["leads"]).astype(int)
    out["member_terms"] = out["group"].map(
        terms.groupby("group")["term"].agg(lambda t: "; ".join(sorted(t)))
    )
    out = out.sort_values(["score_mean"], ascending=False, kind="stable")
    out.insert(1, "rank", np.arange(1, len(out) + 1))
    return out[list(GROUP_COLUMNS)].reset_index(drop=True)


def _split(groups: pd.DataFrame, terms: pd.DataFrame) -> pd.DataFrame:
    """The members of every group of two or more terms, groups in rank order, members by
    lead count: "A first in 2 of 5 replicates"."""
    multi = groups[groups["members"] > 1][["rank", "group", "group_name"]]
    out = multi.merge(terms, on=["group", "group_name"], how="left")
    out = out.sort_values(["rank", "leads", "score_mean"], ascending=[True, False, False])
    out["first_in"] = [f"{n} of {r}" for n, r in zip(out["leads"], out["replicates"], strict=True)]
    return out[["rank", "group", "group_name", "term", "leads", "replicates", "first_in",
                "score_mean", "score_sd", "pvalue", "padj"]].reset_index(drop=True)  # fmt: skip


def split_sentence(split: pd.DataFrame, group: int) -> str:
    """One group's split in words, e.g. ``"INTERFERON_SIGNALING first in 2 of 5
    replicates, CYTOKINE_SIGNALING_IN_IMMUNE_SYSTEM in 2, IFN α/β in 1"``."""
    rows = split[(split["group"] == group) & (split["leads"] > 0)]
    if rows.empty:
        return ""
    parts = [f"{rows['term'].iloc[0]} first in {rows['first_in'].iloc[0]} replicates"]
    parts += [f"{t} in {n}" for t, n in zip(rows["term"].iloc[1:], rows["leads"].iloc[1:],
                                             strict=True)]  # fmt: skip
    return ", ".join(parts)


def control_summary(control: Calibration, alpha: float = 0.05) -> pd.DataFrame:
    """The label-permuted control in one row per level: units tested, how many pass
    Benjamini–Hochberg at ``alpha`` (expected: none), the smallest adjusted p and its unit."""
    rows = []
    for level, table, unit in (("group", control.groups, "group_name"), ("term", control.terms,
                                                                         "term")):  # fmt: skip
        best = table.loc[table["padj"].idxmin()] if table["padj"].notna().any() else None
        rows.append(
            {
                "score": str(table["score"].iloc[0]) if len(table) else "",
                "level": level,
                "tested": int(table["padj"].notna().sum()),
                "significant": int((table["padj"] < alpha).sum()),
                "min_padj": float(best["padj"]) if best is not None else np.nan,
                "best": str(best[unit]) if best is not None else "",
            }
        )
    return pd.DataFrame(rows)
