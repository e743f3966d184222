"""Snakemake script: fit the interpretable autoencoder on prepared data.

Inputs: ``prepared`` (prepared-data contract). Params: ``options`` (dict of
hyper-parameters), ``seed``, ``setup``. Outputs: ``factors`` (factor contract h5ad) and
``model`` (a directory written by ``InterpretableAutoencoder.save``). Everything is
written to temporary paths and renamed at the end, so a failure leaves no output.
"""

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import anndata as ad  # noqa: E402
import torch  # noqa: E402

from interpretable_ae.autoencoder import InterpretableAutoencoder, resolve_device  # noqa: E402
from interpretable_ae.contract import validate_prepared  # noqa: E402
from interpretable_ae.files import staged  # noqa: E402
from interpretable_ae.runner import run_script  # noqa: E402

ARCH = ("n_sparse", "n_dense", "hidden", "dropout", "covariates")
TRAIN = ("epochs", "batch_size", "lr", "lambda0", "lambda1", "lambda2", "lambda3")
TRAIN_OPTIONAL = ("val_fraction", "patience", "warmup_epochs", "lr_decay", "decoder_solve")


def main(smk) -> None:
    log = logging.getLogger("fit_autoencoder")
    torch.set_num_threads(int(smk.threads))
    options = dict(smk.params.options)  # keys left out take the estimator's defaults
    seed = int(smk.params.seed)

    adata = ad.read_h5ad(smk.input.prepared)
    validate_prepared(adata, where=str(smk.input.prepared))
    device = resolve_device(options.get("device", "auto"))
    log.info("%s: %d cells x %d genes; device %s", smk.input.prepared, *adata.shape, device)

    arch = {k: options[k] for k in ARCH if k in options}
    ae = InterpretableAutoencoder(adata, **arch, device=device, seed=seed)
    log.info("%r", ae)
    t0 = time.perf_counter()
    train = {k: options[k] for k in TRAIN + TRAIN_OPTIONAL if k in options}
    ae.train(**train, seed=seed)
    seconds = time.perf_counter() - t0
    log.info(
        "trained in %.1f s; final loss %.5g; %d active",
        seconds,
        ae.final_loss,
        len(ae.active_terms(kind=None)),
    )

    # seed, device and epochs come from the model itself
    factors = ae.to_factor_anndata(run={"setup": smk.params.setup, "seconds": seconds})
    with staged(smk.output.model) as tmp_model:
        ae.save(tmp_model)
        with staged(smk.output.factors, suffix=".part.h5ad") as tmp:
            factors.write_h5ad(tmp)
    log.info("wrote %s and %s", smk.output.factors, smk.output.model)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
