"""The sign of a factor: a higher latent value means higher expression of its genes.

A linear decoder, like any factor model, is unchanged when a factor's latent values and
its decoder column flip sign together: ``z_k W[:, k]ᵀ = (-z_k)(-W[:, k])ᵀ``. The rule that
fixes the sign, here for every model (the autoencoder and f-scLVM alike): the sum of the
factor's decoder weights over its annotated genes is positive (over all genes for an
unannotated factor). In the linear decoder that sum is ``d/dz_k`` of the summed
reconstructed expression of those genes, so a higher value of the factor means more
expression of the term's genes. Plain numpy, no torch: any model's code can use it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def factor_signs(
    weights: np.ndarray, annotation: sp.spmatrix | np.ndarray | None = None
) -> np.ndarray:
    """The sign that makes each factor's genes weigh positively: +1 or -1 per factor.

    Parameters
    ----------
    weights
        The decoder, genes x factors.
    annotation
        Genes x annotated terms (non-zero: the gene is in the set), covering the first
        factors. ``None``: no factor is annotated.

    Returns
    -------
    numpy.ndarray
        One sign per factor, float64. Factor ``k`` takes the sign of the sum of its
        weights over its annotated genes; factors beyond the annotation (sparse, dense),
        and annotated ones whose genes all weigh 0, take the sign of the sum over all
        genes; a sum of exactly 0 gives +1. Multiply the factor's decoder column and
        latent values by it.

    Raises
    ------
    ValueError
        ``annotation`` does not fit ``weights``.

    Examples
    --------
    >>> import numpy as np
    >>> weights = np.array([[-1.0, 0.5], [-0.5, -2.0], [2.0, 0.1]])  # 3 genes x 2 factors
    >>> annotation = np.array([[1], [1], [0]])  # factor 0 is the set of genes 0 and 1
    >>> factor_signs(weights, annotation).tolist()
    [-1.0, -1.0]
    """
    weights = np.asarray(weights, dtype=np.float64)
    total = weights.sum(axis=0)
    if annotation is not None and annotation.shape[1]:
        n = annotation.shape[1]
        if annotation.shape[0] != weights.shape[0] or n > weights.shape[1]:
            raise ValueError(
                f"annotation is {annotation.shape[0]} genes x {n} terms but the weights are "
                f"{weights.shape[0]} genes x {weights.shape[1]} factors; pass the model's "
                "genes x terms mask"
            )
        inside = sp.csc_matrix(annotation, dtype=bool).astype(np.float64)
        in_set = np.asarray(inside.multiply(weights[:, :n]).sum(axis=0)).ravel()
        total[:n] = np.where(in_set != 0, in_set, total[:n])
    return np.where(total < 0, -1.0, 1.0)
