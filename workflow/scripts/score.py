"""Score every factor of one fit (a replicate of a model, or a random-mask fit): univariate
logistic regression of the condition on each factor, and each factor's share of the
condition's expression change (response share); the same with the condition labels
permuted among the cells, within samples (the label control of the calibration); and the
response shares under ``label_permutations`` more permutations (the label null).

Snakemake script: input.factors, input.prepared, params.dataset, params.model,
params.replicate, params.cv_folds, params.seed (of the CV split and the permutations),
params.design (``sample_key``, ``control``), params.label_permutations; output.scores,
output.permuted, output.label_null (TSV: one row per permutation, one column per factor);
log[0].
"""

import logging

from iae_pipeline.contract import read_factors, read_prepared
from iae_pipeline.runner import run_script
from iae_pipeline.score.response import permuted_condition, response_shares
from iae_pipeline.score.scoring import score_replicate
from iae_pipeline.score.tables import write_table


def main(smk) -> None:
    factors = read_factors(smk.input.factors)
    prepared = read_prepared(smk.input.prepared)
    design = dict(smk.params.design)
    sample_key = design.get("sample_key") or None
    seed, n_perm = int(smk.params.seed), int(smk.params.label_permutations)
    condition = prepared.obs["condition"]
    samples = prepared.obs[sample_key] if sample_key else None
    labellings = [condition] + [
        permuted_condition(condition, seed, samples, index=i) for i in range(n_perm + 1)
    ]  # the true labels, the control's permutation (index 0), the label null's (1, 2, ...)
    shares = response_shares(
        factors, prepared, labellings, control=design.get("control"), sample_key=sample_key,
        seed=seed,
    )  # fmt: skip
    tables = []
    for row, labels in ((0, condition), (1, labellings[1])):
        factors.obs["condition"] = labels.to_numpy()  # the labels scored (no copy of X)
        tables.append(
            score_replicate(
                factors,
                str(smk.params.dataset),
                str(smk.params.model),
                replicate=int(smk.params.replicate),
                cv_folds=int(smk.params.cv_folds),
                seed=seed,
                response=shares.iloc[row],
            )  # fmt: skip
        )
    best = tables[0].sort_values("rank").iloc[0]
    top = tables[0].sort_values("response_share", ascending=False).iloc[0]
    logging.info(
        "%s fit %d: best factor by CV accuracy %s (%.3f, AUROC %.3f); largest response share "
        "%s (%.3f); label control and %d more permutations within %s (seed %d)",
        best["model"], best["replicate"], best["term"], best["accuracy_cv"], best["auroc"],
        top["term"], top["response_share"], n_perm, sample_key or "all cells", seed,
    )  # fmt: skip
    write_table(tables[0], tsv=smk.output.scores)
    write_table(tables[1], tsv=smk.output.permuted)
    write_table(shares.iloc[2:].reset_index(drop=True), tsv=smk.output.label_null)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
