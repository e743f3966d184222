"""The side-by-side score tables of one dataset: the per-model tables of the models that are
set side by side (side_by_side_models), in one table each.

Snakemake script: input.scores and input.summaries (one per model, aligned),
params.models (the same order); output.scores, output.summary (TSV); log[0].
"""

import logging

import pandas as pd

from iae_pipeline.runner import run_script
from iae_pipeline.score.scoring import (
    SUMMARY_COLUMNS,
    combine_replicates,
    read_scores,
    read_summary,
)
from iae_pipeline.score.tables import write_table


def main(smk) -> None:
    models = list(smk.params.models)
    if not (len(models) == len(smk.input.scores) == len(smk.input.summaries)):
        raise ValueError(
            f"{len(models)} model(s), {len(smk.input.scores)} score and "
            f"{len(smk.input.summaries)} summary table(s); they must be aligned"
        )
    scores = combine_replicates([read_scores(path) for path in smk.input.scores])
    summary = pd.concat([read_summary(path) for path in smk.input.summaries], ignore_index=True)
    for name, table in (("scores", scores), ("summary", summary)):
        found = list(dict.fromkeys(table["model"]))
        if found != models:
            raise ValueError(f"the {name} tables hold model(s) {found}, expected {models}")
    logging.info("gathered %d model(s): %s", len(models), ", ".join(models))
    write_table(scores, tsv=smk.output.scores)
    write_table(summary[list(SUMMARY_COLUMNS)], tsv=smk.output.summary)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
