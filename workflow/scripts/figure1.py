"""Figure 1: loadings of two terms, coloured by condition (1a) and by cell type (1b).

Snakemake script: input.factors (one model), params.terms (two names, matched exactly or by
display name), optional params.dataset, params.label, params.seed; output.by_condition,
output.by_cell_type (PNG, 300 dpi), output.by_condition_pdf, output.by_cell_type_pdf; log[0].
An absent or switched-off term is drawn as far as possible and reported, never fatal.
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from interpretable_ae.plots import plot_term_scatter, save_figure  # noqa: E402
from interpretable_ae.scoring import read_factors, run_label  # noqa: E402
from interpretable_ae.runner import run_script  # noqa: E402


def main(smk) -> None:
    adata = read_factors(smk.input.factors)
    model = str(adata.uns["run"]["model"])
    label = str(smk.params.get("label", "") or run_label(adata, model))
    dataset = str(smk.params.get("dataset", ""))
    seed = int(smk.params.get("seed", 0))
    title = " · ".join(t for t in (dataset, label) if t)
    for key, png, pdf in (
        ("condition", smk.output.by_condition, smk.output.by_condition_pdf),
        ("cell_type", smk.output.by_cell_type, smk.output.by_cell_type_pdf),
    ):
        fig, notes = plot_term_scatter(adata, list(smk.params.terms), key, title=title, seed=seed)
        for note in notes:
            logging.warning("figure 1 (%s): %s", key, note)
        save_figure(fig, png, pdf)
        logging.info("wrote %s and %s", png, pdf)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
