"""Snakemake script: fit the interpretable autoencoder on prepared data.

Input ``prepared`` (prepared-data contract). Params: ``options`` (the model's options,
see :mod:`iae_pipeline.fit.autoencoder`), ``seed``, ``setup``, and for a fit on a random
mask ``random_mask`` (the seed of the permutation of the mask's gene rows,
:mod:`iae_pipeline.analyses.random_masks`; recorded in ``uns['run']``). Outputs:
``factors`` (factor contract h5ad) and, optionally, ``model`` (a directory written by
``InterpretableAutoencoder.save``), both renamed into place only once complete. The training
state is checkpointed every ``config['checkpoint_minutes']`` minutes (default 10; 0: every
epoch; at an epoch's end) in ``checkpoint/`` beside them (not an output): a rerun after a
crash or a cluster time limit resumes from it; training removes it when done. The interval
is read from the config, not a param, so that changing it never re-runs a finished fit.
"""

from contextlib import ExitStack
from pathlib import Path

import torch

from iae_pipeline.analyses.random_masks import mark_random_fit, random_mask_data
from iae_pipeline.config import check_device, checkpoint_seconds
from iae_pipeline.contract import read_prepared, write_factor_file
from iae_pipeline.files import staged
from iae_pipeline.fit.autoencoder import fit_autoencoder
from iae_pipeline.runner import run_script


def main(smk) -> None:
    # where the fit runs (a GPU node on a cluster), before reading anything
    check_device(
        smk.params.options.get("device", "auto"), f"models.{smk.params.setup}.options.device"
    )
    torch.set_num_threads(int(smk.threads))
    prepared = read_prepared(smk.input.prepared)
    random_mask = smk.params.get("random_mask")
    if random_mask is not None:
        prepared = random_mask_data(prepared, int(random_mask))
    ae, factors = fit_autoencoder(
        prepared,
        dict(smk.params.options),
        seed=int(smk.params.seed),
        setup=smk.params.setup,
        checkpoint_dir=Path(smk.output.factors).parent / "checkpoint",
        checkpoint_seconds=checkpoint_seconds(smk),
        loadings=False,  # streamed into the file: never all cells x factors in memory
    )
    if random_mask is not None:
        mark_random_fit(factors, int(random_mask))
    with ExitStack() as both:  # the model (a random fit has none) lands with its factors
        if "model" in smk.output.keys():
            ae.save(both.enter_context(staged(smk.output.model)))
        with staged(smk.output.factors, suffix=".part.h5ad") as tmp:
            write_factor_file(factors, tmp, ae.latent_chunks())


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
