"""Snakemake script: read one dataset, preprocess it, write output.prepared (contract).

Inputs: one named input per file role of the dataset (or ``simulated``, the output of the
planted-condition step), ``genesets`` (GMT paths in the order of datasets.<name>.genesets)
and optionally ``orthologs``. Params: ``dataset`` (its dict, preprocess defaults merged),
``genesets`` (the gene-set dicts, each with ``name``), ``seed``. Before the output is
written, the prepared data are checked against what the fits, scoring and figures will ask
of them (``iae_pipeline.prepare.checks.check_ready_to_fit``, from the config: read here, not a
param, so that editing e.g. a figure's terms never re-runs preparation and the fits).
"""

from iae_pipeline.config import prefit_requirements
from iae_pipeline.prepare.checks import check_ready_to_fit
from iae_pipeline.prepare.preprocess import dataset_inputs, prepare_from_config
from iae_pipeline.runner import run_script


def main(smk) -> None:
    dataset = dict(smk.params.dataset)
    config = getattr(smk, "config", None) or {}
    check = None
    if dataset.get("name") in (config.get("datasets") or {}):  # always, when run by Snakemake
        needs = prefit_requirements(config, dataset["name"])

        def check(prepared):
            check_ready_to_fit(prepared, needs)

    prepare_from_config(
        dataset=dataset,
        **dataset_inputs(dict(smk.input.items())),
        geneset_specs=[dict(g) for g in smk.params.genesets],
        seed=int(smk.params.seed),
        output=smk.output.prepared,
        check=check,
    )


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
