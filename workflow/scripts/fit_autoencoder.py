"""Snakemake script: fit the interpretable autoencoder on prepared data.

Input ``prepared`` (prepared-data contract). Params: ``options`` (the model's options,
see :mod:`iae_pipeline.ae_adapter`), ``seed``, ``setup``. Outputs: ``factors`` (factor
contract h5ad) and ``model`` (a directory written by ``InterpretableAutoencoder.save``),
both renamed into place only once complete.
"""

import torch

from iae_pipeline.ae_adapter import fit_autoencoder
from iae_pipeline.config import check_device
from iae_pipeline.contract import read_prepared
from iae_pipeline.files import staged
from iae_pipeline.runner import run_script


def main(smk) -> None:
    # where the fit runs (a GPU node on a cluster), before reading anything
    check_device(
        smk.params.options.get("device", "auto"), f"models.{smk.params.setup}.options.device"
    )
    torch.set_num_threads(int(smk.threads))
    prepared = read_prepared(smk.input.prepared)
    ae, factors = fit_autoencoder(
        prepared, dict(smk.params.options), seed=int(smk.params.seed), setup=smk.params.setup
    )
    with staged(smk.output.model) as tmp_model:
        ae.save(tmp_model)
        with staged(smk.output.factors, suffix=".part.h5ad") as tmp:
            factors.write_h5ad(tmp)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
