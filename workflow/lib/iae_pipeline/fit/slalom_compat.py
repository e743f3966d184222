"""Runtime shims that let ``slalom`` 1.0.0.dev11 (f-scLVM, 2017) import and train on the
current stack (Python 3.11, numpy 2, SciPy >= 1.12, scikit-learn >= 0.20, setuptools >= 81).

slalom's files are neither edited nor vendored; each shim only *adds* what slalom looks up
and the current stack no longer has, and never replaces anything that exists:

``pkg_resources``
    slalom's ``__init__`` (``get_distribution``, ``DistributionNotFound``) and brewer2mpl
    (``resource_string``) import it; setuptools >= 81 no longer ships it. When it is
    missing, a three-name stand-in built on :mod:`importlib.metadata` is registered.
``RandomizedPCA``
    ``slalom.utils`` imports ``sklearn.decomposition.RandomizedPCA`` (removed in
    scikit-learn 0.20) but never calls it; a placeholder that raises when called is added.
``scipy_numpy_aliases``
    slalom calls numpy functions through ``import scipy as SP`` (``SP.zeros``,
    ``SP.randn``, ``SP.random.permutation``, ...), some at import time. SciPy < 1.12
    re-exported them: numpy's names, ``randn`` from :mod:`numpy.random` and
    ``log``/``log2``/``sqrt`` from :mod:`numpy.emath` (complex results for negative input).
    Exactly the names slalom uses are added back, with those same meanings.

Names removed in numpy 2 (NEP 52: ``np.float_``, ``np.NaN``, ...) need no shim: slalom
uses none of them (``tests/pipeline/fit/test_slalom_compat.py`` checks its sources).

Apply with :func:`apply_shims` before the first ``import slalom``, or call
:func:`import_slalom`. Applying twice is a no-op. The shims are process wide (they add
attributes to the ``scipy`` and ``sklearn.decomposition`` modules), so the package applies
them only when a slalom fit is asked for, never on import.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

# numpy names slalom 1.0.0.dev11 reaches through ``scipy`` (``SP.<name>`` / ``S.<name>``).
SCIPY_NUMPY_NAMES = (
    "absolute", "arange", "argsort", "array", "ceil", "diag", "dot", "double",
    "errstate", "exp", "eye", "floor", "hstack", "int32", "int_", "isnan", "isscalar",
    "mean", "median", "mod", "nan", "newaxis", "ones", "outer", "pi", "random", "repeat",
    "reshape", "setxor1d", "sum", "tile", "unique", "vstack", "where", "zeros",
)  # fmt: skip
# SciPy < 1.12 took these from numpy.emath (``from numpy.lib.scimath import *``).
SCIPY_EMATH_NAMES = ("log", "log2", "sqrt")
# ... and these from numpy.random.
SCIPY_RANDOM_NAMES = ("randn",)


class RandomizedPCA:
    """Placeholder for ``sklearn.decomposition.RandomizedPCA`` (removed in scikit-learn
    0.20): slalom imports it and never calls it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError(
            "RandomizedPCA is a placeholder added by interpretable_ae.slalom_compat; use "
            "sklearn.decomposition.PCA(svd_solver='randomized') instead"
        )


def _make_pkg_resources() -> types.ModuleType:
    """A stand-in for the three ``pkg_resources`` names slalom and brewer2mpl use."""
    mod = types.ModuleType("pkg_resources", "Stand-in added by interpretable_ae.slalom_compat.")

    class DistributionNotFound(importlib.metadata.PackageNotFoundError):
        """No installed distribution of that name."""

    class Distribution:
        def __init__(self, name: str) -> None:
            try:
                self.version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError as err:
                raise DistributionNotFound(name) from err
            self.project_name = name

    def resource_string(module: str, resource: str) -> bytes:
        # relative to the module's folder, as pkg_resources did (a module, not only a package)
        return (Path(importlib.import_module(module).__file__).parent / resource).read_bytes()

    mod.DistributionNotFound = DistributionNotFound
    mod.get_distribution = Distribution
    mod.resource_string = resource_string
    mod.__shim__ = True
    return mod


def shim_pkg_resources() -> bool:
    """Register the ``pkg_resources`` stand-in when the real one cannot be imported."""
    try:
        importlib.import_module("pkg_resources")
        return False
    except ImportError:
        sys.modules["pkg_resources"] = _make_pkg_resources()
        return True


def shim_randomized_pca() -> bool:
    """Add the ``RandomizedPCA`` placeholder to ``sklearn.decomposition`` when missing."""
    decomposition = importlib.import_module("sklearn.decomposition")
    if hasattr(decomposition, "RandomizedPCA"):
        return False
    decomposition.RandomizedPCA = RandomizedPCA
    return True


def shim_scipy_numpy_aliases() -> bool:
    """Add the numpy aliases slalom calls through ``scipy`` that SciPy no longer has."""
    scipy = importlib.import_module("scipy")
    wanted = (
        [(n, getattr(np, n)) for n in SCIPY_NUMPY_NAMES]
        + [(n, getattr(np.emath, n)) for n in SCIPY_EMATH_NAMES]
        + [(n, getattr(np.random, n)) for n in SCIPY_RANDOM_NAMES]
    )
    added = False
    for name, value in wanted:
        if not hasattr(scipy, name):
            setattr(scipy, name, value)
            added = True
    return added


SHIMS: dict[str, Callable[[], bool]] = {
    "pkg_resources": shim_pkg_resources,
    "RandomizedPCA": shim_randomized_pca,
    "scipy_numpy_aliases": shim_scipy_numpy_aliases,
}


def apply_shims(names: Iterable[str] | None = None) -> list[str]:
    """Apply the named shims (all by default).

    Parameters
    ----------
    names
        Keys of :data:`SHIMS` (``pkg_resources``, ``RandomizedPCA``, ``scipy_numpy_aliases``);
    ``None``: all.

    Returns
    -------
    list of str
        The names that changed something.
    """
    names = list(SHIMS) if names is None else list(names)
    unknown = sorted(set(names) - set(SHIMS))
    if unknown:
        raise ValueError(f"unknown slalom shim(s) {unknown}; choose from {sorted(SHIMS)}")
    return [name for name in names if SHIMS[name]()]


def import_slalom() -> types.ModuleType:
    """Apply every shim, then import and return ``slalom``."""
    apply_shims()
    return importlib.import_module("slalom")
