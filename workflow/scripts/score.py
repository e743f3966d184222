"""Score every factor of one fit (one replicate of one model): univariate logistic regression
of the condition on each factor.

Snakemake script: input.factors, params.dataset, params.model, params.replicate,
params.cv_folds, params.seed (of the CV split); optional params.condition_key;
output.scores (TSV); log[0].
"""

import logging

from iae_pipeline.contract import read_factors
from iae_pipeline.runner import run_script
from iae_pipeline.score.scoring import score_replicate
from iae_pipeline.score.tables import write_table


def main(smk) -> None:
    table = score_replicate(
        read_factors(smk.input.factors),
        str(smk.params.dataset),
        str(smk.params.model),
        replicate=int(smk.params.replicate),
        condition_key=smk.params.get("condition_key", "condition"),
        cv_folds=int(smk.params.cv_folds),
        seed=int(smk.params.seed),
    )
    best = table.sort_values("rank").iloc[0]
    logging.info(
        "%s replicate %d: best factor %s (CV accuracy %.3f, AUROC %.3f)",
        best["model"], best["replicate"], best["term"], best["accuracy_cv"], best["auroc"],
    )  # fmt: skip
    write_table(table, tsv=smk.output.scores)
    logging.info("wrote %d rows to %s", len(table), smk.output.scores)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
