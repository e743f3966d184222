"""The top-n terms by decoder L2 norm of one model, over its replicates.

Snakemake script: input.factors (one factors.h5ad per replicate), params.n, optional
params.model, params.label, params.dataset; output.tsv, output.md, optional output.html;
log[0]. Only each file's var table is read, never the loadings.
"""

import logging

from iae_pipeline.contract import read_factor_var
from iae_pipeline.runner import run_script
from iae_pipeline.score.tables import top_terms_over_replicates, write_table


def main(smk) -> None:
    dataset = str(smk.params.get("dataset", ""))
    model = str(smk.params.get("model", ""))
    label = str(smk.params.get("label", "") or model)
    n = int(smk.params.n)
    paths = list(smk.input.factors)
    table = top_terms_over_replicates([read_factor_var(p) for p in paths], n=n)
    if len(table) < n:
        logging.warning("%s: only %d annotated factor(s), fewer than %d", model, len(table), n)
    logging.info("%s: top term %s", model, table["term"].iloc[0] if len(table) else "-")
    table.insert(0, "label", label)
    table.insert(0, "model", model)
    table.insert(0, "dataset", dataset)
    where = ", ".join(t for t in (dataset, label) if t)
    title = f"Top {n} terms by decoder L2 norm over {len(paths)} replicate(s)" + (
        f", {where}" if where else ""
    )
    write_table(table, tsv=smk.output.tsv)
    shown = table.drop(columns=["dataset", "model", "label"])  # said in the title
    write_table(shown, md=smk.output.md, html_path=smk.output.get("html"), title=title)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
