"""Figure 3 (Liao-style): loadings of two terms in one model per cell type, by group.

Snakemake script: input.factors (one fit: replicate 0 of the model), params.terms (two),
params.cell_types (list), params.group_key (obs column, e.g. "group" for Liao, "condition"
in the demo), params.groups (order; empty = all), optional params.dataset, params.label,
params.seed; output.png, output.pdf; log[0]. Only the two terms' loadings are read; boxes
use every cell, points a seeded random 250 per box. Absent terms, cell types or groups are
reported, never fatal.
"""

import matplotlib

matplotlib.use("Agg")

from iae_pipeline.contract import read_factors
from iae_pipeline.figures.loadings import plot_group_loadings
from iae_pipeline.figures.style import figure_title, finish_figure
from iae_pipeline.runner import run_script


def main(smk) -> None:
    adata = read_factors(smk.input.factors, backed=True)
    fig, notes = plot_group_loadings(
        adata,
        list(smk.params.terms),
        list(smk.params.cell_types),
        str(smk.params.group_key),
        list(smk.params.get("groups", []) or []),
        seed=int(smk.params.get("seed", 0)),
        title=figure_title(adata, str(smk.params.get("dataset", "")), smk.params.get("label", "")),
    )
    finish_figure(fig, notes, "figure 3", smk.output.png, smk.output.pdf)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
