"""Score every factor of one fit (a replicate of a model, or a random-mask fit): univariate
logistic regression of the condition on each factor, and each factor's share of the
condition's expression change (response share); then the same with the condition labels
permuted among the cells, within samples (the label control of the calibration).

Snakemake script: input.factors, input.prepared, params.dataset, params.model,
params.replicate, params.cv_folds, params.seed (of the CV split and of the permutation),
params.design (``sample_key``, ``control``); output.scores, output.permuted (TSV); log[0].
"""

import logging

import pandas as pd

from iae_pipeline.contract import read_factors, read_prepared
from iae_pipeline.runner import run_script
from iae_pipeline.score.response import permuted_condition, response_shares
from iae_pipeline.score.scoring import score_replicate
from iae_pipeline.score.tables import write_table


def score(smk, factors, prepared, condition: pd.Series) -> pd.DataFrame:
    """The score table of ``factors`` with ``condition`` as the labels."""
    design = dict(smk.params.design)
    factors.obs["condition"] = condition.to_numpy()  # the labels scored (no copy of X)
    shares = response_shares(
        factors, prepared, condition=condition, control=design.get("control"),
        sample_key=design.get("sample_key") or None, seed=int(smk.params.seed),
    )  # fmt: skip
    return score_replicate(
        factors,
        str(smk.params.dataset),
        str(smk.params.model),
        replicate=int(smk.params.replicate),
        cv_folds=int(smk.params.cv_folds),
        seed=int(smk.params.seed),
        response=shares,
    )


def main(smk) -> None:
    factors = read_factors(smk.input.factors)
    prepared = read_prepared(smk.input.prepared)
    sample_key = dict(smk.params.design).get("sample_key") or None
    condition = prepared.obs["condition"]
    table = score(smk, factors, prepared, condition)
    best = table.sort_values("rank").iloc[0]
    top = table.sort_values("response_share", ascending=False).iloc[0]
    logging.info(
        "%s fit %d: best factor by CV accuracy %s (%.3f, AUROC %.3f); largest response share "
        "%s (%.3f)",
        best["model"], best["replicate"], best["term"], best["accuracy_cv"], best["auroc"],
        top["term"], top["response_share"],
    )  # fmt: skip
    samples = prepared.obs[sample_key] if sample_key else None
    permuted = permuted_condition(condition, int(smk.params.seed), samples)
    control = score(smk, factors, prepared, permuted)
    logging.info("label control: condition permuted (seed %d) within %s",
                 int(smk.params.seed), sample_key or "all cells")  # fmt: skip
    write_table(table, tsv=smk.output.scores)
    write_table(control, tsv=smk.output.permuted)
    logging.info("wrote %d rows to %s and %s", len(table), smk.output.scores, smk.output.permuted)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
