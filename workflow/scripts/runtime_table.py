"""Table 1: wall seconds and max RSS of each model on each dataset, from benchmark files.

Snakemake script: input.benchmarks, params.entries ([{dataset, model[, label]}] aligned with
them), optional params.reference (default "ae"); output.tsv, output.md, optional output.html;
log[0].
"""

import logging

from iae_pipeline.runner import run_script
from iae_pipeline.tables import runtime_table, write_table


def main(smk) -> None:
    reference = str(smk.params.get("reference", "ae"))
    table = runtime_table(list(smk.input.benchmarks), list(smk.params.entries), reference)
    if table["seconds_ratio"].isna().any():
        lacking = sorted(set(table.loc[table["seconds_ratio"].isna(), "dataset"]))
        logging.warning(
            "no '%s' run with a non-zero time for dataset(s) %s: ratios left empty",
            reference,
            lacking,
        )
    for row in table.itertuples():
        logging.info(
            "%s / %s: %.1f s, %.0f MB", row.dataset, row.model, row.seconds, row.max_rss_mb
        )
    title = f"Table 1: runtime and peak memory (ratios relative to '{reference}')"
    write_table(
        table,
        tsv=smk.output.tsv,
        md=smk.output.md,
        html_path=smk.output.get("html"),
        title=title,
        digits=2,
    )


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
