"""Classical baselines (prerank GSEA, scanpy's score_genes) beside the models' term ranks.

Snakemake script: input.prepared, input.scores (the dataset's score TSV); params.models,
params.labels, params.dataset, params.ranking, params.permutations, params.top_n,
params.cv_folds, params.seed, params.control (optional); output.tsv, output.html, output.png,
output.pdf; log[0].
"""

import logging

import anndata as ad
import matplotlib

matplotlib.use("Agg")

from iae_pipeline.analyses.baselines import overlap_matrix, read_model_scores, run_baselines
from iae_pipeline.figures.analyses import plot_agreement
from iae_pipeline.figures.style import finish_figure
from iae_pipeline.runner import run_script
from iae_pipeline.score.tables import write_table


def main(smk) -> None:
    prepared = ad.read_h5ad(smk.input.prepared)
    scores = read_model_scores(smk.input.scores)
    top_n = int(smk.params.top_n)
    table = run_baselines(
        prepared,
        scores,
        models=list(smk.params.models),
        ranking=str(smk.params.ranking),
        permutations=int(smk.params.permutations),
        cv_folds=int(smk.params.cv_folds),
        top_n=top_n,
        seed=int(smk.params.seed),
        control=smk.params.get("control") or None,
    )
    counts = table["agreement"].value_counts()
    logging.info(
        "top %d: %d term(s) in both, %d in the models' lists only, %d in the classical only",
        top_n, counts.get("both", 0), counts.get("models only", 0),
        counts.get("classical only", 0),
    )  # fmt: skip
    logging.info("shared terms between top-%d lists:\n%s", top_n, overlap_matrix(table, top_n))
    dataset = str(smk.params.dataset)
    title = f"{dataset}: the models' top terms and the classical methods'"
    write_table(table, tsv=smk.output.tsv, html_path=smk.output.html, title=title)
    fig, notes = plot_agreement(
        table, top_n=top_n, labels=dict(smk.params.get("labels", {}) or {}), title=title
    )
    finish_figure(fig, notes, "baselines", smk.output.png, smk.output.pdf)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
