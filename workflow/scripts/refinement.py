"""Gene-set refinement of one model: the genes each annotated factor keeps, gains, loses.

Snakemake script: input.prepared (the prepared data, for the annotation), input.factors
(one factors.h5ad per replicate of the model); params.model, params.label, params.dataset,
params.min_weight, params.terms (list; empty: the top_terms by weight norm),
params.top_terms, params.top_genes; output.genes (TSV, one row per term and gene),
output.terms (TSV) and output.html (per-term summary), output.png, output.pdf; log[0].
"""

import logging

import anndata as ad
import matplotlib

matplotlib.use("Agg")

from iae_pipeline.analyses.refinement import refinement_table, term_summary, top_refined_terms
from iae_pipeline.contract import read_factors
from iae_pipeline.figures.analyses import plot_refinement
from iae_pipeline.figures.style import finish_figure
from iae_pipeline.runner import run_script
from iae_pipeline.score.tables import write_table


def main(smk) -> None:
    prepared = ad.read_h5ad(smk.input.prepared)
    paths = [str(p) for p in smk.input.factors]
    runs = [read_factors(p) for p in paths]
    genes = refinement_table(runs, prepared, min_weight=float(smk.params.min_weight), names=paths)
    summary = term_summary(genes, runs)
    model, label = str(smk.params.model), str(smk.params.get("label", "") or smk.params.model)
    dataset = str(smk.params.get("dataset", ""))
    terms, missing = top_refined_terms(
        summary, list(smk.params.get("terms", []) or []), int(smk.params.top_terms)
    )
    notes = [f"term {t} is not an active annotated factor of {model}." for t in missing]
    logging.info(
        "%s: %d active annotated factors over %d replicate(s); per factor on average %.1f "
        "gained and %.1f lost gene(s)",
        model, len(summary), len(runs), summary["n_gained"].mean(), summary["n_lost"].mean(),
    )  # fmt: skip
    title = f"{dataset} · {label}: gene-set refinement"
    write_table(genes, tsv=smk.output.genes)
    write_table(summary, tsv=smk.output.terms, html_path=smk.output.html, title=title)
    fig, notes = plot_refinement(
        genes, summary, terms, n_genes=int(smk.params.top_genes), title=title, notes=notes
    )
    finish_figure(fig, notes, f"refinement ({model})", smk.output.png, smk.output.pdf)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
