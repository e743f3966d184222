"""The paper's claims judged on one dataset (:mod:`iae_pipeline.analyses.verdicts`).

Snakemake script: input.summary (the side-by-side summary), input.benchmarks and
input.factors (every replicate's fit benchmark and factor file, aligned with
params.entries: {model, replicate}), input.prepared, input.groups / input.terms /
input.split (the autoencoder's calibration; empty lists when it is not calibrated);
params.roles ({autoencoder, fsclvm, dense}: model names or None), params.fig2_terms (a
list or a regular expression), params.alpha, params.min_cells, params.dataset;
output.tsv, output.html; log[0].
"""

import logging

import anndata as ad
import pandas as pd

from iae_pipeline.analyses.calibration import split_sentence
from iae_pipeline.analyses.verdicts import (
    dense_claim,
    figure2_claim,
    response_claim,
    speed_claim,
    verdict_table,
)
from iae_pipeline.contract import read_run
from iae_pipeline.figures.terms import select_terms
from iae_pipeline.runner import run_script
from iae_pipeline.score.scoring import read_summary
from iae_pipeline.score.tables import read_benchmark, write_table


def _timings(smk) -> tuple[pd.Series, pd.Series]:
    rows = []
    for entry, bench, factors in zip(smk.params.entries, smk.input.benchmarks,
                                     smk.input.factors, strict=True):  # fmt: skip
        run = read_run(factors)
        rows.append({"model": entry["model"], "seconds": float(read_benchmark(bench)["s"].median()),
                     "converged": bool(run.get("converged", True))})  # fmt: skip
    fits = pd.DataFrame(rows, columns=["model", "seconds", "converged"])
    by_model = fits.groupby("model")
    return by_model["seconds"].mean(), by_model["converged"].all()


def _calibration(smk, lead: str):
    if not smk.input.groups:
        return None, None, ""
    groups, terms, split = (
        pd.read_csv(paths[0], sep="\t")
        for paths in (smk.input.groups, smk.input.terms, smk.input.split)
    )
    groups, terms = groups[groups["score"] == lead], terms[terms["score"] == lead]
    return groups, terms, split[split["score"] == lead]


def main(smk) -> None:
    dataset = str(smk.params.dataset)
    roles = dict(smk.params.roles)
    summary = read_summary(smk.input.summary)
    fig2, _ = select_terms(summary["term"].astype(str).unique(), smk.params.fig2_terms)
    seconds, converged = _timings(smk)
    prepared = ad.read_h5ad(smk.input.prepared, backed="r")
    n_cells, n_terms = prepared.n_obs, len(prepared.uns["geneset_terms"])
    prepared.file.close()
    groups, terms, split = _calibration(smk, "response_share")
    sentence = ""
    if terms is not None:
        present = terms[terms["term"].isin(fig2)].sort_values("score_mean", ascending=False)
        if not present.empty:
            sentence = split_sentence(split, int(present["group"].iloc[0]))
    rows = [
        figure2_claim(summary, fig2, roles.get("autoencoder"), roles.get("fsclvm")),
        dense_claim(summary, fig2, roles.get("fsclvm"), roles.get("dense")),
        speed_claim(
            seconds,
            converged,
            roles.get("autoencoder"),
            roles.get("fsclvm"),
            n_cells,
            n_terms,
            min_cells=int(smk.params.min_cells),
        ),  # fmt: skip
        response_claim(groups, terms, fig2, sentence, alpha=float(smk.params.alpha)),
    ]
    table = verdict_table(dataset, rows)
    for row in table.itertuples():
        logging.info("%s: %s: %s (%s)", dataset, row.claim, row.verdict.upper(), row.numbers)
    write_table(table, tsv=smk.output.tsv, html_path=smk.output.html,
                title=f"{dataset}: the paper's claims, judged")  # fmt: skip


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
