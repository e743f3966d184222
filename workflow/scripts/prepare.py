"""Snakemake script: read one dataset, preprocess it, write output.prepared (contract).

Inputs: one named input per file role of the dataset, ``genesets`` (GMT paths in the
order of datasets.<name>.genesets) and optionally ``orthologs``. Params: ``dataset``
(its dict, preprocess defaults merged), ``genesets`` (the gene-set dicts, each with
``name``), ``seed``. On bad input: one error line in the log, exit 1, no output.
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "lib"))  # noqa: F821

from interpretable_ae.preprocess import prepare_from_config  # noqa: E402

NOT_FILES = ("genesets", "orthologs")


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def main(smk) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(smk.log[0], mode="w"), logging.StreamHandler(sys.stderr)],
        force=True,
    )
    inputs = dict(smk.input.items())
    files = {role: str(path) for role, path in inputs.items() if role not in NOT_FILES}
    try:
        prepare_from_config(
            dataset=dict(smk.params.dataset),
            files=files,
            gmt_paths=_as_list(inputs.get("genesets", [])),
            geneset_specs=[dict(g) for g in smk.params.genesets],
            orthologs=inputs.get("orthologs"),
            seed=int(smk.params.seed),
            output=smk.output.prepared,
        )
    except (ValueError, OSError) as err:
        logging.getLogger("prepare").error("%s", err)
        Path(smk.output.prepared).unlink(missing_ok=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(snakemake))  # noqa: F821
