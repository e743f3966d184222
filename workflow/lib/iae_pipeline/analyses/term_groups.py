"""Term groups: terms that share most of their genes, read as one claim.

Gene-set collections nest and overlap (Reactome's INTERFERON_SIGNALING, its IFN α/β child
and CYTOKINE_SIGNALING_IN_IMMUNE_SYSTEM share most of their genes), and which of them a
model's factor carries depends on the fit's seed. A group joins terms whose similarity
over the prepared genes (the mask's rows) reaches ``threshold``:

- ``rule: jaccard`` (default): ``|A ∩ B| / |A ∪ B|``;
- ``rule: overlap``: ``|A ∩ B| / min(|A|, |B|)`` (a small set inside a large one is 1);

joined by ``linkage`` (``single``: a chain of similar pairs is one group, the connected
components of the similarity graph; ``average`` / ``complete``: scipy's hierarchical
clustering cut at ``1 - threshold``). Jaccard 0.4 with single linkage is the measured
default (docs/analyses.md: at 0.3 one group swallows the RNA-processing and immune terms on
real Kang cells, at 0.5 the interferon group is two terms).

Groups come from the mask alone, never from a fit or the condition: a random mask
(:mod:`iae_pipeline.analyses.random_masks`) has the same groups with other genes, so each
group has a null of its own. Groups are numbered by their number of genes (largest
first) and named after their largest member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform

RULES = ("jaccard", "overlap")
LINKAGES = ("single", "average", "complete")
GROUP_COLUMNS = ("term", "group", "group_name", "group_size", "group_genes", "term_genes")


def term_similarity(mask: Any, rule: str = "jaccard") -> np.ndarray:
    """Terms x terms similarity of the columns of a genes x terms ``mask``.

    Parameters
    ----------
    mask
        Genes x terms annotation (dense or scipy sparse; non-zero = member).
    rule
        ``jaccard`` or ``overlap`` (module docstring).

    Returns
    -------
    numpy.ndarray
        Symmetric, 1 on the diagonal (0 for a term without genes).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[1, 1], [1, 0], [0, 1]])
    >>> term_similarity(m).round(2).tolist()
    [[1.0, 0.33], [0.33, 1.0]]
    """
    if rule not in RULES:
        raise ValueError(f"unknown term-group rule '{rule}'; use one of {RULES}")
    binary = sp.csc_matrix(mask, dtype=np.float64)
    binary.data[:] = 1.0
    shared = (binary.T @ binary).toarray()
    size = np.diag(shared).copy()
    if rule == "jaccard":
        denominator = size[:, None] + size[None, :] - shared
    else:
        denominator = np.minimum(size[:, None], size[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denominator > 0, shared / denominator, 0.0)
    np.fill_diagonal(out, (size > 0).astype(float))
    return out


def group_labels(
    similarity: np.ndarray, threshold: float = 0.4, method: str = "single"
) -> np.ndarray:
    """Cluster label (0, 1, ...) per term: terms joined at ``similarity >= threshold``."""
    if not 0 < threshold <= 1:
        raise ValueError(f"term-group threshold must be in (0, 1], got {threshold}")
    if method not in LINKAGES:
        raise ValueError(f"unknown term-group linkage '{method}'; use one of {LINKAGES}")
    n = similarity.shape[0]
    if n <= 1:
        return np.zeros(n, dtype=int)
    if method == "single":  # exactly the connected components of the thresholded graph
        _, labels = connected_components(sp.csr_matrix(similarity >= threshold), directed=False)
        return labels
    distance = np.clip(1.0 - similarity, 0.0, 1.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method=method)
    return fcluster(tree, t=1.0 - threshold + 1e-12, criterion="distance") - 1


def term_groups(
    mask: Any,
    terms: Sequence[str],
    *,
    rule: str = "jaccard",
    threshold: float = 0.4,
    method: str = "single",
) -> pd.DataFrame:
    """One row per term: its group, the group's name, members and genes.

    Parameters
    ----------
    mask
        Genes x terms annotation of the prepared data (its rows: the kept genes).
    terms
        The terms, one per mask column.
    rule, threshold, method
        The similarity, the level at which terms join, and the linkage.

    Returns
    -------
    pandas.DataFrame
        Columns ``term``, ``group`` (1 = the group with most genes), ``group_name`` (its
        member with most genes, ties by name), ``group_size`` (members), ``group_genes``
        (genes in any member), ``term_genes``; rows in term order.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0], [0, 0, 1]])
    >>> term_groups(m, ["A", "B", "C"])[["term", "group", "group_name"]].values.tolist()
    [['A', 1, 'A'], ['B', 1, 'A'], ['C', 2, 'C']]
    """
    terms = [str(t) for t in terms]
    binary = sp.csc_matrix(mask, dtype=np.float64)
    if binary.shape[1] != len(terms):
        raise ValueError(f"the mask has {binary.shape[1]} columns but {len(terms)} terms")
    labels = group_labels(term_similarity(binary, rule), threshold, method)
    term_genes = np.asarray((binary != 0).sum(axis=0)).ravel().astype(int)
    rows = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        genes = int((np.asarray((binary[:, members] != 0).sum(axis=1)).ravel() > 0).sum())
        name = sorted(members, key=lambda k: (-term_genes[k], terms[k]))[0]
        rows.append((label, genes, terms[name], len(members)))
    order = sorted(rows, key=lambda r: (-r[1], r[2]))
    number = {r[0]: i + 1 for i, r in enumerate(order)}
    info = {r[0]: r for r in rows}
    return pd.DataFrame(
        {
            "term": terms,
            "group": [number[lb] for lb in labels],
            "group_name": [info[lb][2] for lb in labels],
            "group_size": [info[lb][3] for lb in labels],
            "group_genes": [info[lb][1] for lb in labels],
            "term_genes": term_genes,
        }
    )[list(GROUP_COLUMNS)]


def membership(groups: pd.DataFrame, terms: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    """Terms x groups 0/1 matrix (terms in the given order) and the group numbers."""
    index = groups.set_index("term")["group"]
    missing = [t for t in terms if t not in index.index]
    if missing:
        raise ValueError(f"term(s) {missing[:3]} have no group; derive groups from the same mask")
    numbers = sorted(index.unique().tolist())
    column = {g: j for j, g in enumerate(numbers)}
    out = np.zeros((len(terms), len(numbers)))
    out[np.arange(len(terms)), [column[index[t]] for t in terms]] = 1.0
    return out, numbers
