"""The code every result was made with: one row per job from the provenance records
(version, code digest, whether the library has changed since), for the report.

Snakemake script: params.records (the records' folder); output.tsv, output.html; log[0].
"""

import logging

import pandas as pd

from iae_pipeline.provenance import provenance_table
from iae_pipeline.runner import run_script
from iae_pipeline.score.tables import write_table


def main(smk) -> None:
    table = pd.DataFrame(provenance_table(smk.params.records))
    older = table[~table["made_by_current_code"].eq("yes")] if len(table) else table
    if len(older):
        logging.warning(
            "%d job(s) made by older library code; list them with "
            "`python -m iae_pipeline.provenance` and rerun with --forcerun",
            len(older),
        )
    write_table(
        table,
        tsv=smk.output.tsv,
        html_path=smk.output.html,
        title="The code each result was made with (version and library digest per job)",
    )


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
