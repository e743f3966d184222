"""Snakemake script: plant the configured condition in one dataset (the demo's step).

Inputs: the dataset's file roles, ``genesets`` (GMT paths in the order of
datasets.<name>.genesets) and optionally ``orthologs``. Params: ``dataset`` (its dict,
preprocess defaults merged) and ``genesets`` (the gene-set dicts, each with ``name``).
Output ``simulated``: log-normalised annotated genes with ``obs['condition']``.
"""

from iae_pipeline.prepare.preprocess import dataset_inputs
from iae_pipeline.prepare.simulation import simulate_from_config
from iae_pipeline.runner import run_script


def main(smk) -> None:
    simulate_from_config(
        dataset=dict(smk.params.dataset),
        **dataset_inputs(dict(smk.input.items())),
        geneset_specs=[dict(g) for g in smk.params.genesets],
        output=smk.output.simulated,
    )


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
