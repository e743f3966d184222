"""Random masks: the prepared annotation with its gene rows permuted, for the null fits.

A random mask gives every gene the term memberships of another gene, drawn by a seeded
permutation of the mask's rows. Every term keeps its size, every pair of terms its overlap
(the terms' Gram matrix ``IᵀI`` is unchanged), and so every term group of
:mod:`iae_pipeline.analyses.term_groups` is the same group with other genes. A model fitted
on it answers: what would a term of this size and these overlaps carry if its genes were
drawn at random from the data?

Random fit ``k`` of a dataset uses seed ``seed + k`` for both the permutation (a numpy
stream of its own, :data:`MASK_STREAM`) and the fit; the seed is recorded in the prepared
data's ``uns['random_mask']`` and the factor file's ``uns['run']``.
"""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import scipy.sparse as sp

from interpretable_ae.conventions import MASK_KEY, TERMS_KEY

MASK_STREAM = 11  # the permutation's own stream: it never repeats a fit's own draws
RANDOM_MASK_KEY = "random_mask"


def null_seed(seed: int, k: int) -> int:
    """The seed of random fit ``k``: ``seed + k``.

    Examples
    --------
    >>> null_seed(0, 3)
    3
    """
    if k < 0:
        raise ValueError(f"a random fit's index must be >= 0, got {k}")
    return int(seed) + int(k)


def permute_rows(mask: Any, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(mask[perm], perm)``: gene ``i`` takes the memberships of gene ``perm[i]``.

    Parameters
    ----------
    mask
        Genes x terms annotation (dense or scipy sparse).
    seed
        Seeds the permutation (stream :data:`MASK_STREAM`).

    Returns
    -------
    tuple
        The permuted mask (CSR float32) and the permutation.

    Examples
    --------
    >>> import numpy as np
    >>> m, perm = permute_rows(np.eye(3), seed=0)
    >>> bool((m.toarray().sum(axis=0) == 1).all())
    True
    """
    mask = sp.csr_matrix(mask, dtype=np.float32)
    perm = np.random.default_rng((int(seed), MASK_STREAM)).permutation(mask.shape[0])
    return mask[perm].tocsr(), perm


def random_mask_data(prepared: ad.AnnData, seed: int) -> ad.AnnData:
    """Prepared data whose mask's gene rows are permuted with ``seed``.

    The expression, cells and terms are the prepared data's own (``X`` is shared, not
    copied); ``uns['random_mask']`` records the seed and the permutation.

    Parameters
    ----------
    prepared
        Prepared data (``varm['geneset_mask']``, ``uns['geneset_terms']``).
    seed
        The permutation's seed (:func:`null_seed`).

    Returns
    -------
    anndata.AnnData
        The same cells and genes with a random mask.
    """
    if MASK_KEY not in prepared.varm or TERMS_KEY not in prepared.uns:
        raise ValueError(
            f"prepared data lack varm['{MASK_KEY}'] or uns['{TERMS_KEY}']; prepare the "
            "dataset again"
        )
    mask, perm = permute_rows(prepared.varm[MASK_KEY], seed)
    out = ad.AnnData(
        X=prepared.X,
        obs=prepared.obs.copy(),
        var=prepared.var.copy(),
        uns={k: v for k, v in prepared.uns.items() if k != RANDOM_MASK_KEY},
    )
    out.varm[MASK_KEY] = mask
    out.uns[RANDOM_MASK_KEY] = {"seed": int(seed), "permutation": perm.astype(np.int64)}
    return out


def mark_random_fit(factors: ad.AnnData, seed: int) -> ad.AnnData:
    """Record in a factor file's ``uns['run']`` that it was fitted on random mask ``seed``."""
    factors.uns["run"] = {**dict(factors.uns["run"]), "random_mask_seed": int(seed)}
    return factors
