"""Figure 1: loadings of two terms in one model, coloured by condition (1a) and by cell type (1b).

Snakemake script: input.factors (one fit: replicate 0 of the model), params.terms (two names,
matched exactly or by display name), optional params.dataset, params.label, params.seed,
params.max_cells (a seeded random subsample of this many cells is drawn from larger
datasets; the figure says so); output.by_condition, output.by_cell_type (PNG, 300 dpi),
output.by_condition_pdf, output.by_cell_type_pdf; log[0]. Only the two terms' loadings are
read. An absent or switched-off term is drawn as far as possible and reported, never fatal.
"""

import matplotlib

matplotlib.use("Agg")

from iae_pipeline.contract import read_factors
from iae_pipeline.figures.loadings import plot_term_scatter
from iae_pipeline.figures.style import figure_title, finish_figure
from iae_pipeline.runner import run_script


def main(smk) -> None:
    adata = read_factors(smk.input.factors, backed=True)
    title = figure_title(adata, str(smk.params.get("dataset", "")), smk.params.get("label", ""))
    max_cells = smk.params.get("max_cells", 50_000)
    for key, png, pdf in (
        ("condition", smk.output.by_condition, smk.output.by_condition_pdf),
        ("cell_type", smk.output.by_cell_type, smk.output.by_cell_type_pdf),
    ):
        fig, notes = plot_term_scatter(
            adata,
            list(smk.params.terms),
            key,
            title=title,
            seed=int(smk.params.get("seed", 0)),
            max_cells=None if max_cells is None else int(max_cells),
        )
        finish_figure(fig, notes, f"figure 1 ({key})", png, pdf)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
