"""Snakemake script: fit f-scLVM (slalom) on prepared data, write the factor contract.

Input ``prepared`` (prepared-data h5ad). Params: ``options`` (dict of
:class:`iae_pipeline.fit.slalom.SlalomOptions` fields, e.g. n_dense 0 or 3),
``seed``, ``setup`` (the setup's name), and for a fit on a random mask ``random_mask``
(the seed of the permutation of the mask's gene rows,
:mod:`iae_pipeline.analyses.random_masks`; recorded in ``uns['run']``). Output ``factors``
(factor-contract h5ad), written to a temporary file and renamed. Log ``log[0]`` (warnings
captured). Threads: BLAS is capped at ``threads``. More cells than the ``max_cells`` option: refused before the data
are loaded. On bad input or a failed fit (numerical failure; no convergence when
``require_convergence``): one error line naming the setup and the iteration, exit 1, no
output. A fit kept without convergence is logged and recorded in ``uns['run']``.

Resuming: the fit saves its state every ``config['checkpoint_minutes']`` minutes (default
10; 0: every iteration) to ``checkpoint/`` beside the output (not an output: Snakemake
ignores it); a rerun after a kill or a pre-emption resumes from it.
It is removed once the output is written, or when the fit fails (a rerun would fail again;
a full disk aside).
"""

import logging
from pathlib import Path

import anndata as ad

from iae_pipeline.analyses.random_masks import mark_random_fit, random_mask_data
from iae_pipeline.config import checkpoint_seconds
from iae_pipeline.files import remove, staged
from iae_pipeline.fit.slalom import SlalomFitError, SlalomOptions, check_size, fit_slalom
from iae_pipeline.runner import is_disk_full, run_script


def main(smk) -> None:
    log = logging.getLogger("fit_slalom")
    setup = str(smk.params.setup)
    output = smk.output.factors
    checkpoint = Path(output).parent / "checkpoint"
    try:
        options = SlalomOptions.from_mapping(dict(smk.params.options), where="params.options")
        backed = ad.read_h5ad(smk.input.prepared, backed="r")  # the size, without X
        n_cells = backed.n_obs
        backed.file.close()
        check_size(n_cells, options, "f-scLVM", key=f"models.{setup}.options.max_cells")
        prepared = ad.read_h5ad(smk.input.prepared)
        random_mask = smk.params.get("random_mask")
        if random_mask is not None:
            prepared = random_mask_data(prepared, int(random_mask))
        factors = fit_slalom(
            prepared,
            options,
            seed=int(smk.params.seed),
            setup=setup,
            n_threads=int(smk.threads),
            checkpoint_dir=checkpoint,
            checkpoint_seconds=checkpoint_seconds(smk),
        )
        if random_mask is not None:
            mark_random_fit(factors, int(random_mask))
        with staged(output, suffix=".part.h5ad") as tmp:
            factors.write_h5ad(tmp)
    except (ValueError, OSError) as err:  # SlalomFitError names the setup and the iteration
        if is_disk_full(err):
            raise  # kept: the rerun resumes once there is space
        remove(checkpoint)
        raise type(err)(f"slalom setup '{setup}': {smk.input.prepared}: {err}") from err
    except SlalomFitError:
        remove(checkpoint)
        raise
    remove(checkpoint)
    run = factors.uns["run"]
    log.info(
        "slalom setup '%s': %d factors (%d active), %d iterations (%s) -> %s",
        setup,
        factors.n_vars,
        int(factors.var["active"].sum()),
        run["iterations"],
        "converged" if run["converged"] else "NOT converged",
        output,
    )


if __name__ == "__main__":
    run_script(main, snakemake, expected=(ValueError, OSError, SlalomFitError))  # noqa: F821
