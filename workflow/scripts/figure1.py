"""Figure 1: loadings of two terms, coloured by condition (1a) and by cell type (1b).

Snakemake script: input.factors (one model), params.terms (two names, matched exactly or by
display name), optional params.dataset, params.label, params.seed; output.by_condition,
output.by_cell_type (PNG, 300 dpi), output.by_condition_pdf, output.by_cell_type_pdf; log[0].
An absent or switched-off term is drawn as far as possible and reported, never fatal.
"""

import matplotlib

matplotlib.use("Agg")

from iae_pipeline.plots import figure_title, finish_figure, plot_term_scatter
from iae_pipeline.runner import run_script
from iae_pipeline.scoring import read_factors


def main(smk) -> None:
    adata = read_factors(smk.input.factors)
    title = figure_title(adata, str(smk.params.get("dataset", "")), smk.params.get("label", ""))
    for key, png, pdf in (
        ("condition", smk.output.by_condition, smk.output.by_condition_pdf),
        ("cell_type", smk.output.by_cell_type, smk.output.by_cell_type_pdf),
    ):
        fig, notes = plot_term_scatter(
            adata, list(smk.params.terms), key, title=title, seed=int(smk.params.get("seed", 0))
        )
        finish_figure(fig, notes, f"figure 1 ({key})", png, pdf)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
