"""Snakemake script: read one dataset, preprocess it, write output.prepared (contract).

Inputs: one named input per file role of the dataset (or ``simulated``, the output of the
planted-condition step), ``genesets`` (GMT paths in the order of datasets.<name>.genesets)
and optionally ``orthologs``. Params: ``dataset`` (its dict, preprocess defaults merged),
``genesets`` (the gene-set dicts, each with ``name``), ``seed``.
"""

from iae_pipeline.preprocess import dataset_inputs, prepare_from_config
from iae_pipeline.runner import run_script


def main(smk) -> None:
    prepare_from_config(
        dataset=dict(smk.params.dataset),
        **dataset_inputs(dict(smk.input.items())),
        geneset_specs=[dict(g) for g in smk.params.genesets],
        seed=int(smk.params.seed),
        output=smk.output.prepared,
    )


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
