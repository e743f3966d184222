"""One model's scores over its replicates: every replicate's table in one, and a summary per
term (mean and sd of CV accuracy and AUROC, median rank, fraction of replicates ranked first).

Snakemake script: input.scores (one TSV per replicate), optional params.replicates (the
replicate ids expected), params.dataset, params.model; output.scores, output.summary (TSV);
log[0].
"""

import logging

from iae_pipeline.runner import run_script
from iae_pipeline.score.scoring import combine_replicates, read_scores, summarise_scores
from iae_pipeline.score.tables import write_table


def main(smk) -> None:
    scores = combine_replicates([read_scores(path) for path in smk.input.scores])
    expected = smk.params.get("replicates")
    if expected is not None and sorted(set(scores["replicate"])) != sorted(map(int, expected)):
        raise ValueError(
            f"{smk.params.get('model', '')}: the score tables hold replicate(s) "
            f"{sorted(set(scores['replicate']))}, expected {sorted(map(int, expected))}; "
            "rerun the score rule"
        )
    summary = summarise_scores(scores)
    for (dataset, model), part in summary.groupby(["dataset", "model"], sort=False):
        best = part.iloc[0]
        logging.info(
            "%s / %s over %d replicate(s): best term %s (CV accuracy %.3f ± %.3f, first in "
            "%.0f%% of replicates)",
            dataset, model, best["replicates"], best["term"], best["accuracy_cv_mean"],
            best["accuracy_cv_sd"], 100 * best["first_fraction"],
        )  # fmt: skip
    write_table(scores, tsv=smk.output.scores)
    write_table(summary, tsv=smk.output.summary)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
