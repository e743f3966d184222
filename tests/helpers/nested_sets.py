"""A planted response on nested gene sets, with decoys of the same shape: the calibration's
hardest honest case.

``nested_simulation`` draws cells with :func:`interpretable_ae.simulate.simulate_counts`
(Poisson counts from gene means, cell-type programmes and size factors; no planted set),
gives every cell one of ``n_donors`` donors (each donor shifts a few genes of its own and
has cells in both conditions: a paired design), then plants a stimulation with
:func:`interpretable_ae.simulate.plant_stimulation` on the genes of the *child* set, and,
more weakly, on ``extra_genes`` genes drawn at random (a real response is broader than any
one set). The gene sets:

- ``PLANTED_CHILD`` ⊂ ``PLANTED_PARENT`` ⊂ ``PLANTED_GRANDPARENT`` (sizes ``sizes``): the
  planted family; each set holds half of the next one's genes, so neighbours share a
  Jaccard index of 0.5 and a rule at 0.4 puts the three in one group;
- ``DECOY<i>_CHILD`` ⊂ ``DECOY<i>_PARENT`` ⊂ ``DECOY<i>_GRANDPARENT`` for ``i < n_decoys``:
  families of the same shape on other genes (so that the group of the planted family
  has random versions of its own shape in every random fit, and rivals of its shape);
- ``BACKGROUND_00`` ...: ``n_background`` random sets of 10 to 40 genes from all genes
  (they hold planted and extra genes by chance, as real sets do).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from interpretable_ae.simulate import plant_stimulation, simulate_counts

PLANTED = ("PLANTED_CHILD", "PLANTED_PARENT", "PLANTED_GRANDPARENT")
LEVELS = ("CHILD", "PARENT", "GRANDPARENT")
DONOR_STREAM = 3


def nested_family(genes: np.ndarray, names: tuple[str, ...], sizes: tuple[int, ...]) -> dict:
    """Sets ``names`` over the first ``sizes[-1]`` of ``genes``, each one the first
    ``sizes[i]`` of them: child ⊂ parent ⊂ grandparent."""
    return {name: sorted(genes[:size].tolist()) for name, size in zip(names, sizes, strict=True)}


def nested_simulation(
    seed: int = 0,
    *,
    n_cells: int = 400,
    n_genes: int = 500,
    n_background: int = 40,
    n_decoys: int = 5,
    sizes: tuple[int, int, int] = (10, 20, 40),
    strength: float = 1.5,
    extra_genes: int = 30,
    extra_strength: float = 0.3,
    n_donors: int = 6,
) -> tuple[ad.AnnData, dict[str, list[str]]]:
    """Log-normalised cells with a planted response on ``PLANTED_CHILD``, and the gene sets.

    Returns ``(adata, gene_sets)``; ``adata.obs`` has ``condition`` (control / stimulated),
    ``cell_type`` and ``donor``; ``adata.uns['simulation']`` records what was planted.

    Examples
    --------
    >>> adata, sets = nested_simulation(0, n_cells=200, n_genes=300)
    >>> set(sets["PLANTED_CHILD"]) < set(sets["PLANTED_PARENT"])
    True
    """
    rng = np.random.default_rng((seed, DONOR_STREAM))
    base, _ = simulate_counts(n_cells=n_cells, n_genes=n_genes, n_sets=0, n_planted=0, seed=seed)
    genes = np.asarray(base.var_names)
    order = rng.permutation(genes)
    if (n_decoys + 1) * sizes[-1] > n_genes:
        raise ValueError(f"{n_decoys + 1} families of {sizes[-1]} genes need more than {n_genes}")
    planted = nested_family(order, PLANTED, sizes)
    decoys = {}
    for i in range(n_decoys):
        names = tuple(f"DECOY{i}_{level}" for level in LEVELS)
        decoys |= nested_family(order[(i + 1) * sizes[-1] :], names, sizes)
    background = {
        f"BACKGROUND_{i:02d}": sorted(
            rng.choice(genes, size=int(rng.integers(10, 41)), replace=False).tolist()
        )
        for i in range(n_background)
    }
    donor = rng.integers(0, n_donors, size=n_cells)
    X = np.asarray(base.X, dtype=np.float32).copy()
    for d in range(n_donors):  # each donor shifts 5 % of the genes up or down
        shifted = rng.choice(n_genes, size=max(1, n_genes // 20), replace=False)
        X[np.ix_(donor == d, shifted)] += rng.normal(0.0, 0.5, size=shifted.size).astype(np.float32)
    base.X = np.clip(X, 0.0, None)
    out = plant_stimulation(
        base,
        planted[PLANTED[0]],
        strength=strength,
        seed=seed,
        terms=[PLANTED[0]],
        extra_genes=extra_genes,
        extra_strength=extra_strength,
    )
    out.obs["donor"] = pd.Categorical([f"donor{d + 1}" for d in donor])
    return out, {**planted, **decoys, **background}
