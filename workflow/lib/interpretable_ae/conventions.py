"""Names and rules that the model and the workflow share (numpy only, no torch).

Defined once here so that the estimator, the workflow's factor file and its readers cannot
drift apart:

- where an AnnData carries its annotation (:data:`MASK_KEY`, :data:`TERMS_KEY`);
- the kinds of factors (:data:`KINDS`) and the names of the unannotated ones
  (:func:`unannotated_name`, :data:`UNANNOTATED`);
- when data count as centred already (:func:`centred_genes`).
"""

from __future__ import annotations

import re

import numpy as np

# where an AnnData carries its annotation: genes x terms matrix I and the term names
MASK_KEY = "geneset_mask"
TERMS_KEY = "geneset_terms"

# the kinds of factors: one per gene set, then the unannotated sparse and dense ones
KINDS = ("annotated", "sparse", "dense")
UNANNOTATED = re.compile(r"^(sparse|dense)_\d+$")  # names of the unannotated factors

# |mean| <= CENTRED_TOLERANCE x root mean square: a gene is centred already
CENTRED_TOLERANCE = 1e-4


def unannotated_name(kind: str, index: int) -> str:
    """The name of the ``index``-th unannotated factor of ``kind``.

    Parameters
    ----------
    kind
        ``"sparse"`` or ``"dense"``.
    index
        Position among the factors of that kind, from 0.

    Returns
    -------
    str
        ``sparse_<index>`` or ``dense_<index>``.

    Examples
    --------
    >>> unannotated_name("dense", 2)
    'dense_2'
    """
    if kind not in KINDS[1:]:
        raise ValueError(f"unannotated factors are sparse or dense, not '{kind}'")
    return f"{kind}_{int(index)}"


def centred_genes(mean: np.ndarray, rms: np.ndarray) -> np.ndarray:
    """Which genes count as centred: ``|mean| <= CENTRED_TOLERANCE * rms``.

    The one rule for "these data are centred already", used by the estimator (so that
    centring centred data changes nothing) and by the workflow's detection of the input's
    data type.

    Parameters
    ----------
    mean
        Per-gene mean over the cells.
    rms
        Per-gene root mean square over the cells (``sqrt(mean**2 + variance)``).

    Returns
    -------
    numpy.ndarray
        Boolean, one entry per gene.

    Examples
    --------
    >>> import numpy as np
    >>> centred_genes(np.array([0.0, 1e-6, 0.5]), np.array([1.0, 1.0, 1.0])).tolist()
    [True, True, False]
    """
    mean = np.asarray(mean, dtype=np.float64)
    return np.abs(mean) <= CENTRED_TOLERANCE * np.asarray(rms, dtype=np.float64)
