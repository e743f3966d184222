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
    """Every option a workflow config may give an autoencoder model.

    Returns
    -------
    tuple of str
        The estimator's architecture options and :class:`~interpretable_ae.training.TrainConfig`'s
        fields, the seed aside (it comes from the config's ``seed``).
    """
    train = tuple(n for n in TrainConfig.option_names() if n != "seed")
    return ARCH_OPTIONS + train


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model's config options, split into the estimator's and the training's.

    Parameters
    ----------
    options
        ``models.<name>.options`` merged for a dataset.

    Returns
    -------
    architecture : dict
        Arguments of :class:`~interpretable_ae.model.InterpretableAutoencoder`.
    training : dict
        Fields of :class:`~interpretable_ae.training.TrainConfig`.

    Raises
    ------
    ValueError
        An unknown option, naming it and the known ones.
    """
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
    """Train the autoencoder on prepared data: the ``fit_autoencoder`` rule.

    Parameters
    ----------
    prepared
        Prepared data (:mod:`iae_pipeline.contract`), the mask in ``varm``.
    options
        The model's config options (:func:`split_options`).
    seed
        Seeds the network and the training.
    setup
        The model's name, recorded in ``uns['run']``.
    progress
        Show a progress bar.
    checkpoint_dir
        Save the training state there after the first epoch that ends
        ``checkpoint_seconds`` after the last save (as the f-scLVM fit does); a rerun
        resumes from it, and the estimator removes it when training ends.
    checkpoint_seconds
        See ``checkpoint_dir``.
    loadings
        False: the factor AnnData comes without ``X``, for
        :func:`iae_pipeline.contract.write_factor_file` to stream it from the model.

    Returns
    -------
    model : interpretable_ae.model.InterpretableAutoencoder
        The trained estimator.
    factors : anndata.AnnData
        Its factor file (:func:`iae_pipeline.contract.factors_from_estimator`).

    Raises
    ------
    ValueError
        Unknown or invalid options, or an unavailable device.
    """
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
