"""Fit the interpretable autoencoder on prepared data and return the factor contract.

The workflow's options for a model (``models.<name>.options``) are the estimator's
architecture options (:data:`interpretable_ae.model.ARCHITECTURE_OPTIONS`) and its training
options (:class:`interpretable_ae.training.TrainConfig`), passed through unchanged: their
defaults and checks live there, once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata as ad

from iae_pipeline.contract import factors_from_estimator, validate_prepared
from interpretable_ae.model import ARCHITECTURE_OPTIONS, InterpretableAutoencoder
from interpretable_ae.training import TrainConfig

log = logging.getLogger(__name__)


# prepared data carry their expression in X only, so the estimator's ``layer`` is not one
ARCH_OPTIONS = tuple(o for o in ARCHITECTURE_OPTIONS if o != "layer")


def option_names() -> tuple[str, ...]:
    """Every option a workflow config may give an autoencoder model (the seed aside:
    it comes from the config's ``seed``)."""
    train = tuple(n for n in TrainConfig.option_names() if n != "seed")
    return ARCH_OPTIONS + train


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(architecture, training)`` options; an unknown key is an error naming it."""
    unknown = sorted(set(options) - set(option_names()))
    if unknown:
        raise ValueError(
            f"unknown autoencoder option(s) {unknown}; known: {', '.join(option_names())}"
        )
    arch = {k: v for k, v in options.items() if k in ARCH_OPTIONS}
    train = {k: v for k, v in options.items() if k not in ARCH_OPTIONS}
    return arch, train


def fit_autoencoder(
    prepared: ad.AnnData,
    options: Mapping[str, Any],
    *,
    seed: int,
    setup: str = "",
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
    checkpoint_seconds: float = 600.0,
    loadings: bool = True,
) -> tuple[InterpretableAutoencoder, ad.AnnData]:
    """Train on prepared data; return the model and its factor-contract AnnData. With
    ``checkpoint_dir`` the fit saves its state there after the first epoch that ends
    ``checkpoint_seconds`` after the last save (as the f-scLVM fit does) and a rerun
    resumes from it (the estimator removes it when training ends). ``loadings=False``:
    the factor AnnData comes without ``X``, for
    :func:`iae_pipeline.contract.write_factor_file` to stream it from the model."""
    validate_prepared(prepared)
    arch, train = split_options(options)
    ae = InterpretableAutoencoder(prepared, **arch, seed=seed)
    log.info("%r", ae)
    t0 = time.perf_counter()
    ae.train(
        **train,
        seed=seed,
        progress=progress,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=None,
        checkpoint_seconds=checkpoint_seconds,
    )
    seconds = time.perf_counter() - t0
    log.info(
        "trained in %.1f s; final loss %.5g; %d of %d factors active",
        seconds, ae.final_loss, len(ae.active_terms(kind=None)), len(ae.factor_names),
    )  # fmt: skip
    # no wall time in the contract: a rerun writes the same bytes (Table 1 has the timings)
    factors = factors_from_estimator(ae, {"setup": setup}, loadings=loadings)
    return ae, factors
