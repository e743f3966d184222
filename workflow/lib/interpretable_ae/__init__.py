"""Interpretable autoencoder with annotations of gene sets (Rybakov et al. 2020).

A nonlinear encoder and a linear decoder whose factors are gene sets, fitted by stochastic
proximal gradient. Modules, one job each:

- :mod:`.model`: the estimator, :class:`InterpretableAutoencoder` (AnnData in and out);
- :mod:`.module`: the torch network; :mod:`.prox`: the proximal operators;
- :mod:`.training`: the training loop and its options; :mod:`.head_solve`: exact solves
  of the linear head (optional); :mod:`.checkpoint`: resumable training;
- :mod:`.data`: cells streamed batch by batch from dense, sparse or on-disk data;
- :mod:`.signs`: the factor sign rule (numpy only);
- :mod:`.genesets`: GMT files and the genes x terms mask; :mod:`.simulate`: planted
  gene-set activity with a known truth.

``from interpretable_ae import InterpretableAutoencoder`` loads torch; the other
modules (e.g. reading a GMT) do not need it.
"""

import importlib
from typing import Any

__version__ = "0.3.0"  # the project's one version (pyproject.toml reads it)
__all__ = ["InterpretableAutoencoder", "TrainConfig"]
_LAZY = {"InterpretableAutoencoder": "model", "TrainConfig": "training"}


def __getattr__(name: str) -> Any:
    """Import the estimator (and torch) on first use only (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'interpretable_ae' has no attribute '{name}'")
