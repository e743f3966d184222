"""Replicates: every model is fitted once per seed, ``config['seed'] + r`` for replicate r;
random fits (``analyses.random_masks``): random mask k is fitted with seed ``seed + k``.

A model whose fit does not depend on the seed is fitted once (replicate 0), whatever
``replicates`` says: more fits would repeat the same numbers. Which kinds depend on the
seed is recorded here, from measurements (config/README.md, "Replicates"):

- ``autoencoder``: yes (weight initialisation, minibatch order, dropout).
- ``slalom``: yes, through the order in which its factors are updated: slalom shuffles it
  at every iteration with numpy's global RNG, which :func:`~iae_pipeline.fit.slalom.fit_slalom`
  seeds. Its initialisation and pre-training reseed with a fixed 222 and do not depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from iae_pipeline.config import ConfigError

# model kind -> whether two seeds give two different fits (measured; see the docstring)
SEED_DEPENDENT: dict[str, bool] = {"autoencoder": True, "slalom": True}


def seed_dependent(kind: str) -> bool:
    """Whether fits of a model kind depend on the seed (unknown kinds are assumed to).

    Parameters
    ----------
    kind
        ``autoencoder``, ``slalom``, ...

    Returns
    -------
    bool
    """
    return SEED_DEPENDENT.get(kind, True)


def replicate_ids(kind: str, replicates: int) -> list[int]:
    """The replicates fitted for a model of a kind.

    Parameters
    ----------
    kind
        The model's kind.
    replicates
        The config's ``replicates``.

    Returns
    -------
    list of int
        ``0 .. replicates - 1``, or ``[0]`` for a kind whose fit does not depend on the seed.

    Examples
    --------
    >>> replicate_ids("autoencoder", 3)
    [0, 1, 2]
    """
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1, got {replicates}; set replicates")
    return list(range(replicates)) if seed_dependent(kind) else [0]


def replicate_seed(seed: int, replicate: int) -> int:
    """The seed of a replicate: ``seed + replicate``.

    Parameters
    ----------
    seed
        The config's ``seed``.
    replicate
        The replicate, from 0.

    Returns
    -------
    int

    Examples
    --------
    >>> replicate_seed(0, 2)
    2
    """
    return int(seed) + int(replicate)


def model_replicates(config: Mapping[str, Any], model: str) -> list[int]:
    """The replicates of one model under the config's ``replicates``.

    Parameters
    ----------
    config
        The config.
    model
        The model's name.

    Returns
    -------
    list of int
        See :func:`replicate_ids`.
    """
    return replicate_ids(config["models"][model]["kind"], int(config.get("replicates", 1)))


def side_by_side_models(config: Mapping[str, Any], finished: Sequence[str]) -> list[str]:
    """The models the side-by-side outputs of a dataset gather, in the order of ``models``.

    Parameters
    ----------
    config
        The config; its ``side_by_side_models`` is ``all`` (the default: they wait for every
        model), ``finished`` or a list of model names.
    finished
        The models whose per-model summary exists when the graph is built (used by
        ``finished``).

    Returns
    -------
    list of str

    Raises
    ------
    ConfigError
        A listed name that is not a model.
    """
    models = list(config["models"])
    spec = config.get("side_by_side_models", "all")
    if spec == "all":
        return models
    if spec == "finished":
        done = set(finished)
        return [m for m in models if m in done]
    if isinstance(spec, str):
        spec = [spec]
    unknown = [m for m in spec if m not in models]
    if unknown:
        raise ConfigError(
            f"config error: side_by_side_models: unknown model(s) {unknown}; use all, "
            f"finished or names defined under models: {', '.join(models)}"
        )
    return [m for m in models if m in set(spec)]


def calibrated_models(config: Mapping[str, Any]) -> list[str]:
    """The models fitted on random masks (``analyses.random_masks``), in the order of
    ``models``: none when ``fits`` is 0; every autoencoder model when ``models`` is null
    (f-scLVM takes hours per fit, so only when named). An unknown name raises
    :class:`ConfigError`."""
    spec = dict((config.get("analyses") or {}).get("random_masks") or {})
    if int(spec.get("fits", 0)) < 1:
        return []
    models = config["models"]
    wanted = spec.get("models")
    if wanted is None:
        wanted = [m for m, s in models.items() if s["kind"] == "autoencoder"]
    unknown = [m for m in wanted if m not in models]
    if unknown:
        raise ConfigError(
            f"config error: analyses.random_masks.models: unknown model(s) {unknown}; use "
            f"names defined under models: {', '.join(models)}"
        )
    chosen = [m for m in models if m in set(wanted)]
    _check_blind_to_labels(config, chosen)
    return chosen


def _check_blind_to_labels(config: Mapping[str, Any], chosen: Sequence[str]) -> None:
    """The label control rescores the same fits with permuted labels: valid only when no
    fit saw the condition (as a covariate)."""
    for model in chosen:
        places = [(f"models.{model}.options", config["models"][model].get("options") or {})]
        places += [
            (f"datasets.{name}.model_options.{model}", (ds.get("model_options") or {})[model])
            for name, ds in config["datasets"].items()
            if model in (ds.get("model_options") or {})
        ]
        for key, options in places:
            if "condition" in (options.get("covariates") or []):
                raise ConfigError(
                    f"config error: {key}.covariates: the fit sees the condition, so the "
                    "calibration's label control (which rescores the same fits with permuted "
                    "labels) would be invalid; remove 'condition' from the covariates or "
                    "leave this model out of analyses.random_masks.models"
                )


def random_fit_ids(config: Mapping[str, Any], model: str) -> list[int]:
    """The random fits of ``model``: ``0 .. fits - 1`` when it is calibrated, else none."""
    if model not in calibrated_models(config):
        return []
    return list(range(int(config["analyses"]["random_masks"]["fits"])))
