"""Figure 1: loadings of two terms, coloured by condition (1a) and by cell type (1b).

Snakemake script: input.factors (one model), params.terms (two names, matched exactly or by
display name), optional params.dataset, params.label, params.seed; output.by_condition,
output.by_cell_type (PNG, 300 dpi), output.by_condition_pdf, output.by_cell_type_pdf; log[0].
An absent or switched-off term is drawn as far as possible and reported, never fatal.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from interpretable_ae.plots import figure_title, finish_figure, plot_term_scatter  # noqa: E402
from interpretable_ae.scoring import read_factors  # noqa: E402
from interpretable_ae.runner import run_script  # noqa: E402


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
