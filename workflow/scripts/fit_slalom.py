"""Snakemake script: fit f-scLVM (slalom) on prepared data, write the factor contract.

Input ``prepared`` (prepared-data h5ad). Params: ``options`` (dict of
:class:`interpretable_ae.slalom_adapter.SlalomOptions` fields, e.g. n_dense 0 or 3),
``seed``, ``setup`` (the setup's name). Output ``factors`` (factor-contract h5ad), written
to a temporary file and renamed. Log ``log[0]`` (warnings captured). Threads: BLAS is
capped at ``threads``. On bad input or a failed fit (no convergence, numerical failure):
one error line naming the setup and the iteration, exit 1, no output.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "lib"))  # noqa: F821

import anndata as ad  # noqa: E402

from interpretable_ae.slalom_adapter import SlalomFitError, SlalomOptions, fit_slalom  # noqa: E402


def main(smk) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(smk.log[0], mode="w"), logging.StreamHandler(sys.stderr)],
        force=True,
    )
    logging.captureWarnings(True)
    log = logging.getLogger("fit_slalom")
    setup = str(smk.params.setup)
    output = Path(smk.output.factors)
    partial = output.with_name(f".{output.name}.partial")
    try:
        options = SlalomOptions.from_mapping(dict(smk.params.options), where="params.options")
    except ValueError as err:
        log.error("slalom setup '%s': %s", setup, err)
        return _fail(partial, output)
    try:
        prepared = ad.read_h5ad(smk.input.prepared)
        factors = fit_slalom(
            prepared,
            options,
            seed=int(smk.params.seed),
            setup=setup,
            n_threads=int(smk.threads),
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        factors.write_h5ad(partial)
        os.replace(partial, output)
    except SlalomFitError as err:  # names the setup and the iteration
        log.error("%s", err)
        return _fail(partial, output)
    except (ValueError, OSError) as err:
        log.error("slalom setup '%s': %s: %s", setup, smk.input.prepared, err)
        return _fail(partial, output)
    run = factors.uns["run"]
    log.info(
        "slalom setup '%s': %d factors (%d active), %d iterations in %.1f s -> %s",
        setup,
        factors.n_vars,
        int(factors.var["active"].sum()),
        run["iterations"],
        run["seconds"],
        output,
    )
    return 0


def _fail(*paths: Path) -> int:
    for path in paths:
        path.unlink(missing_ok=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(snakemake))  # noqa: F821
