"""Calibration of score tables: groups first, terms, the split within groups, the control."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iae_pipeline.analyses.calibration import (
    GROUP_COLUMNS,
    TERM_COLUMNS,
    GroupRule,
    calibrate,
    control_summary,
    split_sentence,
)
from iae_pipeline.analyses.null import NullSettings

# three nested terms (one group at Jaccard 0.4) and six singletons of 10-20 genes
FAMILY = {"IFN_CHILD": range(10), "IFN_PARENT": range(20), "IFN_GRANDPARENT": range(40)}
SINGLES = {f"OTHER_{i}": range(40 + 12 * i, 52 + 12 * i) for i in range(6)}
TERMS = list(FAMILY) + list(SINGLES)


def mask() -> np.ndarray:
    out = np.zeros((120, len(TERMS)))
    for j, genes in enumerate({**FAMILY, **SINGLES}.values()):
        out[list(genes), j] = 1
    return out


def tables(values: np.ndarray, column: str, kinds: list[str] | None = None) -> pd.DataFrame:
    """Long score table from fits x terms values (plus a dense factor that is ignored)."""
    rows = []
    for i, fit in enumerate(values):
        for term, v in zip(TERMS, fit, strict=True):
            rows.append({column: i, "term": term, "kind": "annotated", "response_share": v,
                         "accuracy_cv": 0.5 + v / 2})  # fmt: skip
        rows.append({column: i, "term": "dense_0", "kind": "dense", "response_share": 0.9,
                     "accuracy_cv": 0.99})  # fmt: skip
    return pd.DataFrame(rows)


def scores(seed: int = 0, planted: bool = True, reps: int = 5, fits: int = 120):
    rng = np.random.default_rng(seed)
    null = np.abs(rng.normal(0, 0.02, (fits, len(TERMS))))
    real = np.abs(rng.normal(0, 0.02, (reps, len(TERMS))))
    if planted:  # the family carries the response; which member leads varies by replicate
        lead = np.array([0, 0, 1, 2, 0])[:reps]
        real[np.arange(reps), lead] += 0.5
    return tables(real, "replicate"), tables(null, "fit")


def test_the_planted_group_is_first_and_significant_and_its_split_is_reported() -> None:
    real, null = scores()
    result = calibrate(real, null, mask(), TERMS, settings=NullSettings(min_null=40))
    groups, terms = result.groups, result.terms
    assert list(groups.columns) == list(GROUP_COLUMNS) and list(terms.columns) == list(TERM_COLUMNS)
    assert len(groups) == 7 and len(terms) == len(TERMS)  # the dense factor is left out
    first = groups.iloc[0]
    assert first["group_name"] == "IFN_GRANDPARENT" and first["members"] == 3
    assert first["rank"] == 1 and first["significant"] and first["genes"] == 40
    assert first["score_mean"] == pytest.approx(
        real[real["term"].isin(list(FAMILY))].groupby("replicate")["response_share"].sum().mean()
    )
    assert first["leader"] == "IFN_CHILD" and first["leader_count"] == 3
    assert not groups.iloc[1:]["significant"].any()
    leads = terms.set_index("term")["leads"]
    assert leads[list(FAMILY)].tolist() == [3, 1, 1] and leads[list(SINGLES)].eq(5).all()
    sentence = split_sentence(result.split, int(first["group"]))
    assert sentence.startswith("IFN_CHILD first in 3 of 5 replicates, ")
    assert "IFN_PARENT in 1" in sentence and "IFN_GRANDPARENT in 1" in sentence
    assert set(result.values["level"]) == {"group", "term"}


def label_null(reps: int = 5, permutations: int = 200, scale: float = 0.02, seed: int = 1):
    """The replicates' shares under permuted labels: noise of ``scale`` for every term."""
    rng = np.random.default_rng(seed)
    return [
        pd.DataFrame(rng.normal(0, scale, (permutations, len(TERMS) + 1)),
                     columns=[*TERMS, "dense_0"])
        for _ in range(reps)
    ]  # fmt: skip


def test_a_unit_is_claimed_only_when_both_nulls_are_rejected() -> None:
    real, null = scores()
    settings = NullSettings(min_null=40)
    clear = calibrate(real, null, mask(), TERMS, label_null=label_null(), settings=settings)
    first = clear.groups.iloc[0]
    assert first["pvalue_label"] < 1e-3 and first["pvalue_mask"] < 1e-2 and first["significant"]
    assert first["pvalue"] == max(first["pvalue_label"], first["pvalue_mask"])
    # labels that move the planted family as much as the true ones: no claim, whatever
    # the random masks say
    noisy = calibrate(real, null, mask(), TERMS, label_null=label_null(scale=0.5),
                      settings=settings)  # fmt: skip
    first = noisy.groups.iloc[0]
    assert first["pvalue_mask"] < 1e-2 and first["pvalue_label"] > 0.05
    assert not noisy.groups["significant"].any()
    without = calibrate(real, null, mask(), TERMS, settings=settings)
    assert without.groups["pvalue_label"].isna().all()
    assert (without.groups["pvalue"] == without.groups["pvalue_mask"]).all()


def test_without_a_response_nothing_passes() -> None:
    real, null = scores(planted=False)
    result = calibrate(real, null, mask(), TERMS, settings=NullSettings(min_null=40))
    summary = control_summary(result)
    assert summary["significant"].tolist() == [0, 0]
    assert summary["tested"].tolist() == [7, len(TERMS)]


def test_a_non_additive_score_takes_the_best_member() -> None:
    real, null = scores()
    result = calibrate(real, null, mask(), TERMS, score="accuracy_cv",
                       settings=NullSettings(min_null=40))  # fmt: skip
    family = real[real["term"].isin(list(FAMILY))].groupby("replicate")["accuracy_cv"].max()
    assert result.groups.iloc[0]["score_mean"] == pytest.approx(family.mean())


def test_groups_follow_the_rule() -> None:
    real, null = scores()
    strict = calibrate(real, null, mask(), TERMS, rule=GroupRule(threshold=0.6),
                       settings=NullSettings(min_null=40))  # fmt: skip
    assert len(strict.groups) == len(TERMS) and strict.split.empty


def test_a_model_with_fewer_terms_is_grouped_over_its_own_terms() -> None:
    real, null = scores()
    keep = real["term"] != "IFN_PARENT"
    real, null = real[keep], null[null["term"] != "IFN_PARENT"]
    result = calibrate(real, null, mask(), TERMS, settings=NullSettings(min_null=40))
    # without the parent, the child and the grandparent share 0.25 of their genes
    assert result.groups["members"].max() == 1


def test_a_fit_missing_a_term_is_named() -> None:
    real, null = scores()
    with pytest.raises(ValueError, match="fit 3 .*OTHER_0"):
        calibrate(real, null[~((null["fit"] == 3) & (null["term"] == "OTHER_0"))], mask(), TERMS)
