"""Table 1: wall seconds and peak memory of each model on each dataset, mean and sd over the
model's replicates, from the fits' benchmark files; whether the fits converged (f-scLVM).

Snakemake script: input.benchmarks, optional input.factors (aligned: each fit's
factors.h5ad, for uns['run']['converged']), params.entries ([{dataset, model, label,
replicate}] aligned with them), optional params.reference (default "ae"); output.tsv,
output.md, optional output.html; log[0].
"""

import logging

from iae_pipeline.contract import read_run
from iae_pipeline.runner import run_script
from iae_pipeline.score.tables import runtime_table, write_table


def main(smk) -> None:
    reference = str(smk.params.get("reference", "ae"))
    factors = list(smk.input.get("factors", []) or [])
    runs = [read_run(path) for path in factors] if factors else None
    table = runtime_table(list(smk.input.benchmarks), list(smk.params.entries), reference, runs)
    if table["seconds_ratio"].isna().any():
        lacking = sorted(set(table.loc[table["seconds_ratio"].isna(), "dataset"]))
        logging.warning(
            "no '%s' run with a non-zero time for dataset(s) %s: ratios left empty",
            reference,
            lacking,
        )
    for row in table.itertuples():
        logging.info(
            "%s / %s: %.1f s, %.0f MB over %d replicate(s); converged: %s",
            row.dataset, row.model, row.seconds_mean, row.max_rss_mb_mean, row.replicates,
            row.converged,
        )  # fmt: skip
        if isinstance(row.converged, str) and row.converged != "yes":
            logging.warning("%s / %s: not every fit converged (%s)", row.dataset, row.model,
                            row.converged)  # fmt: skip
    title = (
        "Table 1: runtime and peak memory, mean and sd over replicates "
        f"(ratios of the means relative to '{reference}')"
    )
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
