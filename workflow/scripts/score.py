"""Score every factor of one dataset's models (univariate logistic regression on the condition).

Snakemake script: input.factors (one file per model), params.dataset, params.models (aligned
with input.factors), params.cv_folds, params.seed; optional params.condition_key;
output.scores (TSV); log[0].
"""

import logging

from iae_pipeline.runner import run_script
from iae_pipeline.scoring import read_runs, score_runs
from iae_pipeline.tables import write_table


def main(smk) -> None:
    runs = read_runs(smk.params.models, smk.input.factors)
    table = score_runs(
        runs,
        str(smk.params.dataset),
        condition_key=smk.params.get("condition_key", "condition"),
        cv_folds=int(smk.params.cv_folds),
        seed=int(smk.params.seed),
    )
    for model, best in table.sort_values("rank").groupby("model", sort=False).head(1).iterrows():
        logging.info(
            "%s: best factor %s (accuracy %.3f, AUROC %.3f)",
            best["model"],
            best["term"],
            best["accuracy_train"],
            best["auroc"],
        )
    write_table(table, tsv=smk.output.scores)
    logging.info("wrote %d rows to %s", len(table), smk.output.scores)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
