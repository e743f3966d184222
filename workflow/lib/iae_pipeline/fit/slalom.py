"""Fit f-scLVM (``slalom`` 1.0.0.dev11) on prepared data and return the factor contract.

:func:`fit_slalom` takes the prepared AnnData every model reads (``X`` log-normalised,
``varm['geneset_mask']``, ``uns['geneset_terms']``), initialises slalom with
``slalom.initFA`` (with its pre-training when ``pretrain``) and trains it, then writes factors the way
the autoencoder does (:func:`interpretable_ae.contract.make_factor_anndata`):

- annotated factors first (prepared-data term order), then ``sparse_i``
  (slalom's ``hiddenSparse<i>``), then ``dense_i`` (``hidden<i>``);
- ``X``: slalom's factor states ``Q(X)`` (``FA.S.E1``); ``varm['gene_weights']``: the
  posterior-mean weights ``E[W] * Q(Z)`` of the modelled genes (``uns['gene_names']``;
  with ``prune_genes``, genes in no kept term are not modelled);
- ``var['active']``: slalom's relevance switch (a factor it dropped from the update
  schedule is inactive; with ``drop_factors=False`` every factor stays active);
  ``var['relevance']``: ``1 / E[alpha]``; ``var['n_genes_prior' / 'n_genes_gained' /
  'n_genes_lost']``: annotation before and after (``Q(Z) > 0.5``).

Training runs slalom's own update (``CSparseFA.update``) with the stopping rule of
``CSparseFA.train``: the mean absolute reconstruction error is computed every 100
iterations and training stops once the iteration index exceeds ``min_iterations`` and the
error changed by less than ``tolerance`` since the previous check. Unlike ``train`` the
loop checks the state for non-finite or complex values after each iteration and reports
convergence, so failures name the iteration.

Randomness: slalom draws from numpy's global RNG (sparse-factor seeding, update-order
shuffles) and reseeds it with 222 during initialisation. :func:`fit_slalom` seeds the
global RNG with ``seed`` before ``initFA`` and again before training, and restores the
caller's RNG state afterwards.

Resuming: with ``checkpoint_dir``, the training state (every array and number of the
model that an update reads or writes, the loop's position and numpy's RNG; no pickle) is
saved atomically every ``checkpoint_every`` iterations or ``checkpoint_seconds``
(:func:`save_state`); a new fit of the same data, options and seed resumes from it
(:func:`restore_state`) and ends bit-identical to an uninterrupted fit. Initialisation
(``initFA``, with its pre-training) is run again on resume: it is seeded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from iae_pipeline.contract import MASK_KEY, TERMS_KEY, make_factor_anndata, validate_prepared
from interpretable_ae.conventions import unannotated_name
from interpretable_ae.schedule import SaveSchedule
from interpretable_ae.signs import factor_signs

log = logging.getLogger(__name__)

NOISE_MODELS = ("gauss", "hurdle")
# slalom's own argument names, for the hint when one is used as an option
SLALOM_NAMES = {
    "nHidden": "n_dense",
    "nHiddenSparse": "n_sparse",
    "nIterations": "max_iterations",
    "minIterations": "min_iterations",
    "minGenes": "min_genes",
    "pruneGenes": "prune_genes",
    "FPR": "fpr",
    "FNR": "fnr",
    "do_preTrain": "pretrain",
    "dropFactors": "drop_factors",
}
CHECK_EVERY = 100  # slalom's train() checks the reconstruction error every 100 iterations


class SlalomFitError(RuntimeError):
    """slalom failed to fit; ``iteration`` is where (0 = during initialisation)."""

    def __init__(self, message: str, iteration: int) -> None:
        super().__init__(message)
        self.iteration = iteration


class SlalomNumericalError(SlalomFitError):
    """Non-finite or complex model state, or an exception inside slalom."""


class SlalomNotConvergedError(SlalomFitError):
    """``max_iterations`` reached before the stopping rule held."""


@dataclass(frozen=True)
class SlalomOptions:
    """slalom settings; defaults are slalom's own (``initFA`` / ``train``) except

    - ``min_genes``: 0 keeps every term of the prepared data, like the autoencoder (the
      prepared data are already filtered); it means what slalom's ``minGenes`` means:
      terms with MORE than ``min_genes`` genes are fitted;
    - ``tolerance``: slalom's 1e-8 is rarely reached on real data (the demo's error still
      changes by ~1e-6 per 100 iterations after 1,000), where ``train`` then stops silently
      at ``nIterations``; 1e-5 stops the demo after ~700-800 iterations;
    - ``max_cells``: not slalom's; data with more cells are refused before fitting (its
      updates are dense in cells x genes x factors: days at 10^4 cells).
    """

    n_dense: int = 3  # nHidden: unannotated dense factors
    n_sparse: int = 0  # nHiddenSparse: unannotated sparse factors
    max_iterations: int = 2000  # nIterations
    min_iterations: int = 700  # minIterations
    tolerance: float = 1e-5  # change of the mean absolute reconstruction error
    noise: str = "gauss"  # observation noise: gauss or hurdle
    min_genes: int = 0  # minGenes: fit terms with MORE genes than this (slalom's default: 20)
    prune_genes: bool = True  # pruneGenes: model only genes in at least one kept term
    fpr: float = 0.99  # FPR: prior probability of an annotated link
    fnr: float = 0.001  # FNR: prior probability of a link outside the annotation
    pretrain: bool = True  # do_preTrain: pre-train to choose the update order
    drop_factors: bool = True  # dropFactors: stop updating switched-off factors
    require_convergence: bool = True  # raise SlalomNotConvergedError when not converged
    max_cells: int = 100_000  # refuse larger data before fitting (the paper's largest: 65,813)

    @classmethod
    def from_mapping(
        cls, options: Mapping[str, Any] | None, where: str = "options"
    ) -> SlalomOptions:
        """Validated options from a plain mapping (e.g. the Snakemake config).

        Parameters
        ----------
        options
            Field names to values; ``None``: every default.
        where
            Names the options in messages (e.g. their config path).

        Returns
        -------
        SlalomOptions

        Raises
        ------
        ValueError
            An unknown option, a value of the wrong type, or one out of range.
        """
        options = dict(options or {})
        fields = {f.name: type(f.default) for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in options.items():
            if key not in fields:
                close = SLALOM_NAMES.get(key) or next(
                    iter(difflib.get_close_matches(key, fields, n=1, cutoff=0.6)), None
                )
                hint = f" (did you mean '{close}'?)" if close else ""
                raise ValueError(
                    f"{where}: unknown slalom option '{key}'{hint}; known: {', '.join(fields)}"
                )
            kwargs[key] = _typed(value, fields[key], f"{where}: slalom option '{key}'")
        out = cls(**kwargs)
        out._check(where)
        return out

    def _check(self, where: str) -> None:
        problems = []
        if self.n_dense < 0 or self.n_sparse < 0:
            problems.append("n_dense and n_sparse must be >= 0")
        if not 0 <= self.min_iterations < self.max_iterations:
            problems.append("need 0 <= min_iterations < max_iterations")
        if not self.tolerance > 0:
            problems.append("tolerance must be > 0")
        if self.noise not in NOISE_MODELS:
            problems.append(
                f"noise must be one of {NOISE_MODELS} (slalom's 'poisson' model crashes in "
                "1.0.0.dev11)"
            )
        if self.min_genes < 0:
            problems.append("min_genes must be >= 0")
        if self.max_cells < 2:
            problems.append("max_cells must be >= 2")
        if not (0 < self.fnr < 1 and 0 < self.fpr < 1):
            problems.append("fpr and fnr must be in (0, 1)")
        if problems:
            raise ValueError(f"{where}: invalid slalom options: " + "; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _typed(value: Any, kind: type, what: str) -> Any:
    """``value`` as ``kind`` (bool, int, float or str), or a ValueError naming ``what``."""
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    ok = isinstance(value, bool | np.bool_) if kind is bool else not isinstance(value, bool)
    if kind is int:
        ok = ok and isinstance(value, int | np.integer | float) and float(value).is_integer()
    elif kind is float:
        ok = ok and isinstance(value, int | float | np.number)
    elif kind is str:
        ok = ok and isinstance(value, str)
    if not ok:
        raise ValueError(f"{what} must be {expected[kind]}, got {value!r}")
    return kind(value)


def fit_slalom(
    adata: ad.AnnData,
    options: SlalomOptions | Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    setup: str = "",
    n_threads: int | None = 1,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    checkpoint_seconds: float | None = 600.0,
) -> ad.AnnData:
    """Fit f-scLVM (slalom) on prepared data: the ``fit_slalom`` rule.

    Parameters
    ----------
    adata
        Prepared data (:mod:`iae_pipeline.contract`), the mask in ``varm``.
    options
        :class:`SlalomOptions`, or a mapping of its fields (a model's config options).
    seed
        Seeds numpy's global generator, which slalom's shuffled update order draws from.
    setup
        Names the run in ``uns['run']`` and in error messages.
    n_threads
        Caps the BLAS threads (``None``: no cap); slalom's many small products run fastest
        on one.
    checkpoint_dir
        Save the training state there every ``checkpoint_every`` iterations or
        ``checkpoint_seconds`` of fitting, and resume from it (module docstring); the caller
        removes it once the result is written.
    checkpoint_every, checkpoint_seconds
        See ``checkpoint_dir``.

    Returns
    -------
    anndata.AnnData
        The factor file: annotated factors in the prepared terms' order, then dense and
        sparse ones; ``uns['run']`` holds the iterations and whether the fit converged.

    Raises
    ------
    ValueError
        Unusable input or options (more cells than ``max_cells``, unknown options).
    SlalomFitError
        The fit failed: non-finite state, an exception inside slalom, or no convergence
        when ``require_convergence`` is set.
    """
    if not isinstance(options, SlalomOptions):
        options = SlalomOptions.from_mapping(options)
    label = f"slalom setup '{setup}'" if setup else "slalom"
    check_size(adata.n_obs, options, label)
    Y, mask, terms = _inputs(adata, options)

    from iae_pipeline.fit.slalom_compat import import_slalom

    slalom = import_slalom()
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = _Checkpoint(
            Path(checkpoint_dir) / CHECKPOINT_FILE,
            state_fingerprint(Y, mask, terms, options, seed, slalom.__version__),
            checkpoint_every,
            checkpoint_seconds,
        )
    start = time.perf_counter()
    with threadpool_limits(limits=n_threads), _seeded_global_rng(seed):
        fa = _init_fa(slalom, Y, mask, terms, adata.var_names, options, label)
        np.random.seed(seed)  # initFA reseeded with 222; the update-order shuffles use seed
        names = _factor_names(terms, options.n_sparse, options.n_dense)
        iterations, converged, error, delta = _train(fa, options, label, names, checkpoint)
    log.info("%s: fitted in %.1f s", label, time.perf_counter() - start)
    _judge_convergence(converged, iterations, delta, options, label)
    run = {
        "model": "slalom",
        "setup": setup,
        "seed": int(seed),
        "iterations": iterations,
        "converged": bool(converged),
        "reconstruction_error": float(error),
        "error_change": float(delta),
        "slalom_version": slalom.__version__,
        "n_terms_input": len(adata.uns[TERMS_KEY]),
        "n_terms_fitted": len(terms),
        **options.as_dict(),
    }
    return _to_contract(fa, adata, names, run)


def _init_fa(
    slalom: Any, Y: np.ndarray, mask: np.ndarray, terms: Sequence[str], genes: Sequence[str],
    options: SlalomOptions, label: str,
) -> Any:  # fmt: skip
    """slalom's ``initFA`` on the prepared inputs, its state checked before training."""
    with _slalom_quiet(), _numerics(label, iteration=0):
        fa = slalom.initFA(
            Y,
            np.array([f"term{k}" for k in range(len(terms))]),
            mask,
            gene_ids=np.asarray(genes, dtype=object),
            nHidden=options.n_dense,
            nHiddenSparse=options.n_sparse,
            pruneGenes=options.prune_genes,
            FPR=options.fpr,
            FNR=options.fnr,
            noise=options.noise,
            minGenes=options.min_genes,  # the same '>' filter as _inputs: a no-op here
            do_preTrain=options.pretrain,
            dropFactors=options.drop_factors,
        )
    _check_state(fa, label, iteration=0)
    return fa


def _judge_convergence(
    converged: bool, iterations: int, delta: float, options: SlalomOptions, label: str
) -> None:
    """A fit that did not converge is kept with a warning, or refused when
    ``require_convergence``."""
    if converged:
        return
    if not options.require_convergence:
        log.warning(
            "%s: not converged at max_iterations=%d (the error still changed by %.3g per %d "
            "iterations, tolerance %g); kept, recorded as uns['run']['converged'] = False",
            label, iterations, delta, CHECK_EVERY, options.tolerance,
        )  # fmt: skip
        return
    raise SlalomNotConvergedError(
        f"{label} did not converge: after {iterations} iterations (max_iterations) the "
        f"reconstruction error still changed by {delta:.3g} per {CHECK_EVERY} iterations "
        f"(tolerance {options.tolerance:g}); raise max_iterations or tolerance",
        iteration=iterations,
    )


def check_size(
    n_cells: int, options: SlalomOptions, label: str = "slalom", key: str = "max_cells"
) -> None:
    """Refuse data with more than ``options.max_cells`` cells, before anything is fitted.

    Parameters
    ----------
    n_cells
        The data's cells.
    options
        The fit's options.
    label
        Names the model in the message.
    key
        Names the option in the message (e.g. its config path).

    Raises
    ------
    ValueError
        Too many cells, naming the option and the alternatives.
    """
    if n_cells > options.max_cells:
        raise ValueError(
            f"{label}: {n_cells:,} cells is more than max_cells={options.max_cells:,}: f-scLVM's "
            "updates are dense in cells x genes x factors (days at 10,000 cells); subsample "
            f"(preprocess.subsample) or raise {key}"
        )


def _inputs(adata: ad.AnnData, options: SlalomOptions) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Dense float64 ``Y`` (cells x genes), boolean mask (genes x kept terms), kept terms."""
    validate_prepared(adata)
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    Y = np.array(X, dtype=np.float64)  # a copy: initFA centres Y in place
    if adata.n_obs < 2:
        raise ValueError(f"X has {adata.n_obs} cell(s); slalom needs at least 2")
    bad = int((~np.isfinite(Y)).sum())
    if bad:
        raise ValueError(f"X has {bad} non-finite value(s); fix or drop them in preparation")
    mask = sp.csr_matrix(adata.varm[MASK_KEY]).toarray() > 0
    n_genes = mask.sum(axis=0)
    keep = n_genes > options.min_genes  # slalom's minGenes: Iok = I.sum(axis=0) > minGenes
    if not keep.any():
        raise ValueError(
            f"varm['{MASK_KEY}']: no term has more than min_genes={options.min_genes} genes "
            f"(largest: {int(n_genes.max(initial=0))}); lower min_genes"
        )
    dropped = int((~keep).sum())
    if dropped:
        log.info(
            "slalom: %d term(s) with at most %d genes not fitted (min_genes)",
            dropped, options.min_genes,
        )  # fmt: skip
    terms = [str(t) for t, k in zip(adata.uns[TERMS_KEY], keep, strict=True) if k]
    return Y, mask[:, keep], terms


def _factor_names(terms: list[str], n_sparse: int, n_dense: int) -> dict[str, tuple[str, str]]:
    """slalom's column names -> (factor name, kind), in output order: annotated, sparse,
    dense (slalom's 'bias' column of the hurdle model is not a factor)."""
    return (
        {f"term{k}": (t, "annotated") for k, t in enumerate(terms)}
        | {f"hiddenSparse{i}": (unannotated_name("sparse", i), "sparse") for i in range(n_sparse)}
        | {f"hidden{i}": (unannotated_name("dense", i), "dense") for i in range(n_dense)}
    )


def _train(
    fa: Any,
    options: SlalomOptions,
    label: str,
    names: dict[str, tuple[str, str]],
    checkpoint: _Checkpoint | None = None,
) -> tuple[int, bool, float, float]:
    """Run ``fa.update()`` with the stopping rule of ``CSparseFA.train``.

    Returns (iterations, converged, last error, last change of the error).
    """
    error = _reconstruction_error(fa)
    error_old, delta = error, np.inf
    columns = [names.get(str(t), (str(t),))[0] for t in fa.terms]
    start = 0
    if checkpoint is not None and (resumed := restore_state(fa, checkpoint.path, checkpoint.key)):
        start, error, delta = resumed
        log.info("%s: resumed from the checkpoint at iteration %d", label, start)
    for it in range(start, options.max_iterations):
        on_before = fa.doUpdate.copy()
        with _slalom_quiet(), _numerics(label, iteration=it + 1):
            fa.update()
        fa.iterationCount += 1
        _check_state(fa, label, iteration=it + 1)
        for m in np.flatnonzero(on_before > fa.doUpdate):
            log.info("%s: iteration %d switched off factor %s", label, it + 1, columns[m])
        if it % CHECK_EVERY == 0:
            error_old, error = error, _reconstruction_error(fa)
            delta = abs(error_old - error)
            log.info("%s: iteration %d, reconstruction error %.6g", label, it + 1, error)
        if it > options.min_iterations and delta < options.tolerance:
            log.info("%s: converged after %d iterations", label, it + 1)
            return it + 1, True, error, delta
        if checkpoint is not None and checkpoint.due(it + 1):
            save_state(
                fa, checkpoint.path, checkpoint.key, iteration=it + 1, error=error, delta=delta
            )
    return options.max_iterations, False, error, delta


def _reconstruction_error(fa: Any) -> float:
    """Mean absolute error of ``Y - S (W * Q(Z))^T``, as ``CSparseFA.train`` computes it."""
    return float(np.abs(fa.Z.E1 - fa.S.E1 @ (fa.W.E1 * fa.W.C[:, :, 0]).T).mean())


def _when(iteration: int) -> str:
    return f"at iteration {iteration}" if iteration else "during initialisation (iteration 0)"


def _check_state(fa: Any, label: str, iteration: int) -> None:
    """Raise :class:`SlalomNumericalError` when the model state is not finite and real."""
    for name, value in (
        ("factors S", fa.S.E1),
        ("weights W", fa.W.E1),
        ("switches Z", fa.W.C),
        ("ARD alpha", fa.Alpha.E1),
        ("noise precision", fa.Eps.E1),
    ):
        value = np.asarray(value)
        if np.iscomplexobj(value) or not np.isfinite(value).all():
            raise SlalomNumericalError(
                f"{label} failed numerically {_when(iteration)}: {name} has non-finite "
                "or complex values; check X (log-normalised, no constant genes) and the options",
                iteration=iteration,
            )


@contextlib.contextmanager
def _seeded_global_rng(seed: int):
    """Seed numpy's global RNG (slalom's only source of randomness); restore it on exit."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def _numerics(label: str, iteration: int):
    """Turn complex-to-real casts into errors and slalom's exceptions into
    :class:`SlalomNumericalError` naming the iteration."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        try:
            yield
        except (
            ArithmeticError,
            ValueError,
            np.linalg.LinAlgError,
            np.exceptions.ComplexWarning,
        ) as err:
            raise SlalomNumericalError(
                f"{label} failed numerically {_when(iteration)}: {type(err).__name__}: {err}",
                iteration=iteration,
            ) from err


@contextlib.contextmanager
def _slalom_quiet():
    """Route slalom's ``print`` output to the debug log."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line.strip():
                log.debug("slalom: %s", line)


def _to_contract(
    fa: Any, adata: ad.AnnData, names: dict[str, tuple[str, str]], run: dict[str, Any]
) -> ad.AnnData:
    """Reorder slalom's columns (``fa.terms``) to annotated, sparse, dense (the order of
    ``names``, from :func:`_factor_names`) and build the factor contract."""
    column = {str(t): k for k, t in enumerate(fa.terms)}
    order = np.array([column[internal] for internal in names])

    switch = fa.W.C[:, order, 0]
    prior = fa.Pi.E1[:, order] > 0.5
    posterior = switch > 0.5
    idx = np.asarray(fa.idx_genes)
    genes = adata.var_names[np.flatnonzero(idx) if idx.dtype == bool else idx]
    weights = fa.W.E1[:, order] * switch
    # the model package's sign rule (higher loading = more expression of the term's genes);
    # loadings and weights flip together, so the reconstruction is unchanged
    n_annotated = sum(kind == "annotated" for _, kind in names.values())
    signs = factor_signs(weights, prior[:, :n_annotated])
    out = make_factor_anndata(
        loadings=fa.S.E1[:, order] * signs,
        obs=adata.obs,
        factor_names=[name for name, _ in names.values()],
        kinds=[kind for _, kind in names.values()],
        gene_weights=weights * signs,
        gene_names=list(genes),
        active=fa.doUpdate[order] == 1,
        run=run,
    )
    out.var["relevance"] = (1.0 / fa.Alpha.E1[order]).astype(np.float64)
    out.var["n_genes_prior"] = prior.sum(axis=0)
    out.var["n_genes_gained"] = (posterior & ~prior).sum(axis=0)
    out.var["n_genes_lost"] = (prior & ~posterior).sum(axis=0)
    return out


# ---- checkpoints: save and restore the training state ---------------------------------------

CHECKPOINT_FILE = "slalom_state.npz"
CHECKPOINT_FORMAT = 1
# model parts whose arrays and numbers an update reads or writes (Z is the data: constant)
_STATE_PARTS = ("", "S", "W", "Alpha", "Eps", "Pi")
_STATE_SKIP = {"S.E2", "S.cov"}  # set once at initialisation, never read by an update


def state_fingerprint(
    Y: np.ndarray,
    mask: np.ndarray,
    terms: list[str],
    options: SlalomOptions,
    seed: int,
    version: str,
) -> str:
    """What a checkpoint must match to be resumed: data, annotation, options, seed, slalom.

    Parameters
    ----------
    Y
        The data slalom fits.
    mask
        Its annotation.
    terms
        The terms.
    options
        The fit's options.
    seed
        The fit's seed.
    version
        slalom's version.

    Returns
    -------
    str
        A sha256 hex digest.
    """
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(Y), np.ascontiguousarray(mask)):
        digest.update(repr((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    meta = [terms, options.as_dict(), int(seed), version, CHECKPOINT_FORMAT]
    digest.update(json.dumps(meta, sort_keys=True).encode())
    return digest.hexdigest()


def _state_items(fa: Any):
    """``(key, owner, attribute, value)`` of the arrays and numbers of the training state."""
    for part in _STATE_PARTS:
        owner = getattr(fa, part) if part else fa
        for attr, value in vars(owner).items():
            key = f"{part}.{attr}" if part else attr
            if key in _STATE_SKIP:
                continue
            if isinstance(value, np.ndarray) and value.dtype != object:
                yield key, owner, attr, value
            elif isinstance(value, bool | int | float | np.integer | np.floating):
                yield key, owner, attr, value


def save_state(
    fa: Any, path: str | Path, key: str, *, iteration: int, error: float, delta: float
) -> None:
    """Write a slalom model's training state to a checkpoint, atomically.

    The state, the loop's position and numpy's global random state go to an ``.npz`` of
    arrays and JSON (no pickle).

    Parameters
    ----------
    fa
        slalom's model object.
    path
        The ``.npz`` file.
    key
        :func:`state_fingerprint` of the fit.
    iteration, error, delta
        The loop's position and its last error and change.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays, numbers = {}, {}
    for name, _, _, value in _state_items(fa):
        if isinstance(value, np.ndarray):
            arrays[f"a:{name}"] = value
        else:
            numbers[name] = [
                type(value).__name__,
                value.item() if hasattr(value, "item") else value,
            ]
    rng_kind, rng_keys, rng_pos, has_gauss, cached = np.random.get_state()
    meta = {
        "key": key,
        "iteration": int(iteration),
        "error": float(error),
        "delta": float(delta),
        "numbers": numbers,
        "rng": [rng_kind, int(rng_pos), int(has_gauss), float(cached)],
    }
    tmp = path.with_name(f".{path.name}.part.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta)), rng_keys=rng_keys, **arrays)
    os.replace(tmp, path)
    log.info("slalom: checkpoint at iteration %d -> %s", iteration, path)


def restore_state(fa: Any, path: str | Path, key: str) -> tuple[int, float, float] | None:
    """Load a checkpoint written by :func:`save_state` into a freshly initialised model.

    Parameters
    ----------
    fa
        slalom's model object, initialised as for the checkpointed fit.
    path
        The ``.npz`` file.
    key
        :func:`state_fingerprint` of the fit.

    Returns
    -------
    tuple of (int, float, float) or None
        ``(iteration, error, delta)``; ``None`` when there is no checkpoint or it belongs to
        other data, options or seed.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
            arrays = {k[2:]: saved[k] for k in saved.files if k.startswith("a:")}
            rng_keys = saved["rng_keys"]
    except (OSError, ValueError, KeyError) as err:
        log.warning("slalom: %s is not a readable checkpoint (%s); starting over", path, err)
        return None
    if meta.get("key") != key:
        log.warning("slalom: %s is of other data, options or seed; starting over", path)
        return None
    kinds = {"bool": bool, "int": int, "float": float}
    for name, owner, attr, value in list(_state_items(fa)):
        if isinstance(value, np.ndarray):
            setattr(owner, attr, np.array(arrays[name], dtype=value.dtype))
        elif name in meta["numbers"]:
            kind, number = meta["numbers"][name]
            setattr(owner, attr, type(value)(kinds.get(kind, float)(number)))
    for name, array in arrays.items():  # arrays an update created (e.g. Eps.diagSigmaS)
        part, _, attr = name.rpartition(".")
        owner = getattr(fa, part) if part else fa
        if not hasattr(owner, attr):
            setattr(owner, attr, np.array(array))
    rng_kind, rng_pos, has_gauss, cached = meta["rng"]
    np.random.set_state((rng_kind, rng_keys, rng_pos, has_gauss, cached))
    return int(meta["iteration"]), float(meta["error"]), float(meta["delta"])


@dataclass
class _Checkpoint(SaveSchedule):
    """Where and when (every ``every`` iterations or ``seconds``) the loop saves its state
    (:func:`save_state`)."""

    path: Path
    key: str
    every: int | None = None  # iterations
    seconds: float | None = 600.0
    last: float = dataclasses.field(default_factory=time.monotonic)
