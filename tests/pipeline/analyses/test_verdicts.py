"""The paper's claims judged: held, not held, or not testable here, with the numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from iae_pipeline.analyses.verdicts import (
    HELD,
    NOT_HELD,
    UNTESTABLE,
    VERDICT_COLUMNS,
    dense_claim,
    figure2_claim,
    response_claim,
    speed_claim,
    verdict_table,
)

IFN = "REACTOME_INTERFERON_SIGNALING"
ALPHA_BETA = "REACTOME_INTERFERON_ALPHA_BETA_SIGNALING"
ANTIVIRAL = "REACTOME_ANTIVIRAL_MECHANISM_BY_IFN_STIMULATED_GENES"
TERMS = [IFN, ALPHA_BETA, ANTIVIRAL]


def summary(values: dict[str, dict[str, float]], kinds: dict[str, str] | None = None):
    rows = [
        {"model": m, "term": t, "kind": (kinds or {}).get(t, "annotated"), "accuracy_train_mean": v}
        for m, per_term in values.items()
        for t, v in per_term.items()
    ]
    return pd.DataFrame(rows)


def test_figure2_held_when_f_sclvm_wins_only_the_antiviral_term() -> None:
    values = {
        "ae": {IFN: 0.94, ALPHA_BETA: 0.9, ANTIVIRAL: 0.7},
        "slalom": {IFN: 0.51, ALPHA_BETA: 0.45, ANTIVIRAL: 0.96},
    }
    row = figure2_claim(summary(values), TERMS, "ae", "slalom")
    assert row["verdict"] == HELD and "higher on 2 of 3" in row["numbers"]
    assert "0.70 vs 0.96" in row["numbers"]


def test_figure2_not_held_when_f_sclvm_wins_another_term() -> None:
    table = summary({"ae": {IFN: 0.94, ALPHA_BETA: 0.61, ANTIVIRAL: 0.7},
                     "slalom": {IFN: 0.51, ALPHA_BETA: 0.65, ANTIVIRAL: 0.975}})  # fmt: skip
    assert figure2_claim(table, TERMS, "ae", "slalom")["verdict"] == NOT_HELD
    assert figure2_claim(table, TERMS, "ae", None)["verdict"] == UNTESTABLE
    assert figure2_claim(table, [IFN], "ae", "slalom")["verdict"] == UNTESTABLE


def test_dense_factors_take_the_signal() -> None:
    kinds = {"dense_0": "dense", "dense_1": "dense"}
    values = {"slalom": {IFN: 0.9, ANTIVIRAL: 0.97},
              "slalom_dense": {IFN: 0.55, ANTIVIRAL: 0.6, "dense_0": 0.88, "dense_1": 0.6}}  # fmt: skip
    row = dense_claim(summary(values, kinds), TERMS, "slalom", "slalom_dense")
    assert row["verdict"] == HELD and "dense_0 0.88" in row["numbers"]
    values["slalom_dense"]["dense_0"] = 0.58
    assert dense_claim(summary(values, kinds), TERMS, "slalom", "slalom_dense")["verdict"] == (
        NOT_HELD
    )
    assert dense_claim(summary(values, kinds), TERMS, "slalom", None)["verdict"] == UNTESTABLE


def test_the_speed_ratio_is_judged_at_the_paper_s_size_only() -> None:
    seconds = pd.Series({"ae": 100.0, "slalom": 6000.0})
    converged = pd.Series({"ae": True, "slalom": False})
    row = speed_claim(seconds, converged, "ae", "slalom", n_cells=13500, n_terms=130)
    assert row["verdict"] == HELD and "60.0x" in row["numbers"] and "lower bound" in row["numbers"]
    slow = speed_claim(pd.Series({"ae": 100.0, "slalom": 800.0}), converged, "ae", "slalom",
                       n_cells=13500, n_terms=130)  # fmt: skip
    assert slow["verdict"] == NOT_HELD
    small = speed_claim(seconds, converged, "ae", "slalom", n_cells=700, n_terms=51)
    assert small["verdict"] == UNTESTABLE and "60.0x" in small["numbers"]


def calibration(rank: int, padj: float):
    groups = pd.DataFrame(
        {"group": [1, 2], "rank": [rank, 3 - rank], "group_name": ["REACTOME_IMMUNE_SYSTEM", "B"],
         "members": [5, 1], "score_mean": [0.6, 0.1], "score_sd": [0.05, 0.02],
         "replicates": [5, 5], "null_q95": [0.2, 0.1], "pvalue_mask": [padj / 10, 0.5],
         "pvalue_label": [1e-4, 0.3], "padj": [padj, 0.9]}
    )  # fmt: skip
    terms = pd.DataFrame({"term": [IFN, "B"], "group": [1, 2], "score_mean": [0.3, 0.1]})
    return groups, terms


def test_the_interferon_group_must_lead_and_pass_the_null() -> None:
    groups, terms = calibration(1, 0.01)
    row = response_claim(groups, terms, TERMS, "IFN first in 2 of 5 replicates")
    assert row["verdict"] == HELD and "rank 1 of 2" in row["numbers"]
    assert "IFN first in 2 of 5" in row["numbers"]
    assert response_claim(*calibration(1, 0.2), TERMS)["verdict"] == NOT_HELD
    assert response_claim(*calibration(2, 0.01), TERMS)["verdict"] == NOT_HELD
    assert response_claim(None, None, TERMS)["verdict"] == UNTESTABLE
    assert response_claim(*calibration(1, 0.01), ["OTHER"])["verdict"] == UNTESTABLE


def test_the_verdict_table() -> None:
    rows = [
        figure2_claim(summary({}), TERMS, None, None),
        response_claim(None, None, TERMS),
    ]
    table = verdict_table("kang", rows)
    assert list(table.columns) == list(VERDICT_COLUMNS) and (table["dataset"] == "kang").all()
    assert set(table["verdict"]) <= {HELD, NOT_HELD, UNTESTABLE}


@pytest.mark.parametrize("ratio", [32.0, 500.0])
def test_a_larger_ratio_than_the_paper_s_still_holds(ratio) -> None:
    seconds = pd.Series({"ae": 10.0, "slalom": 10.0 * ratio})
    row = speed_claim(seconds, pd.Series({"slalom": True}), "ae", "slalom", 20000, 300)
    assert row["verdict"] == HELD and "lower bound" not in row["numbers"]
