"""Snakemake script: read one dataset, preprocess it, write output.prepared (contract).

Inputs: one named input per file role of the dataset, ``genesets`` (GMT paths in the
order of datasets.<name>.genesets) and optionally ``orthologs``. Params: ``dataset``
(its dict, preprocess defaults merged), ``genesets`` (the gene-set dicts, each with
``name``), ``seed``. On bad input: one error line in the log, exit 1, no output.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from interpretable_ae.preprocess import prepare_from_config  # noqa: E402
from interpretable_ae.runner import run_script  # noqa: E402

NOT_FILES = ("genesets", "orthologs", "code")


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def main(smk) -> None:
    inputs = dict(smk.input.items())
    files = {role: str(path) for role, path in inputs.items() if role not in NOT_FILES}
    prepare_from_config(
        dataset=dict(smk.params.dataset),
        files=files,
        gmt_paths=_as_list(inputs.get("genesets", [])),
        geneset_specs=[dict(g) for g in smk.params.genesets],
        orthologs=inputs.get("orthologs"),
        seed=int(smk.params.seed),
        output=smk.output.prepared,
    )


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
