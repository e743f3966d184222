"""Donor-level test of every factor against the condition, the sample as the unit.

Snakemake script: input.prepared (only an ordering: its sample design was checked when it
was written), input.factors (one factors.h5ad per model, aligned with params.models;
none when the dataset has no sample key), params.design (sample_key, paired, control,
test, min_cells), params.alpha, params.labels, params.dataset; output.tsv, output.html,
output.png, output.pdf; log[0]. Without a sample key the outputs state that no
donor-level test was run (an empty table, a figure with the message) and the job succeeds.
"""

import logging

import matplotlib

matplotlib.use("Agg")

from iae_pipeline.analyses.donor_tests import donor_tests, empty_result
from iae_pipeline.contract import read_factor_files
from iae_pipeline.figures.analyses import plot_volcano
from iae_pipeline.figures.style import finish_figure, message_figure
from iae_pipeline.runner import run_script
from iae_pipeline.samples import NoSamples
from iae_pipeline.score.tables import write_table


def main(smk) -> None:
    dataset = str(smk.params.dataset)
    design = dict(smk.params.design)
    title = f"{dataset}: donor-level test of each factor against the condition"
    try:
        if not design.get("sample_key"):
            raise NoSamples(
                f"dataset '{dataset}' has no sample key, so no donor-level test was run (a "
                "cell-level p-value would treat thousands of cells as independent samples); "
                f"set datasets.{dataset}.sample_key and paired to run it"
            )
        runs = read_factor_files(smk.params.models, smk.input.factors)
        table, used = donor_tests(runs, design, alpha=float(smk.params.alpha), where=dataset)
    except NoSamples as err:
        logging.warning("%s", err)
        write_table(empty_result(), tsv=smk.output.tsv, html_path=smk.output.html, title=str(err))
        finish_figure(message_figure(title, str(err)), [], "donor test", *_figures(smk))
        return
    for model, part in table.groupby("model", sort=False):
        logging.info(
            "%s: %s on %d %s; %d of %d tested factors at FDR < %g; smallest p %.3g (%s)",
            model, used.test_name, int(part["n_samples"].max()),
            "pairs" if used.paired else "samples", int(part["significant"].sum()),
            int(part["pvalue"].notna().sum()), float(smk.params.alpha),
            part["pvalue"].min(), part.loc[part["pvalue"].idxmin(), "term"],
        )  # fmt: skip
    write_table(table, tsv=smk.output.tsv, html_path=smk.output.html, title=title)
    fig, notes = plot_volcano(
        table,
        models=list(smk.params.models),
        labels=dict(smk.params.get("labels", {}) or {}),
        alpha=float(smk.params.alpha),
        title=f"{dataset}: {used.case} vs {used.control}, per {used.sample_key}",
    )
    finish_figure(fig, notes, "donor test", *_figures(smk))


def _figures(smk) -> tuple[str, str]:
    return smk.output.png, smk.output.pdf


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
