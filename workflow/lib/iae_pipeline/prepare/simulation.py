"""The demo's planted condition: a step of its own, between loading and preparing.

:func:`simulate_dataset` takes a loaded dataset, keeps its log-normalised annotated genes
(:func:`iae_pipeline.prepare.preprocess.annotated_lognorm`, the same steps 1-3 as preparation)
and plants a stimulation on the genes of the configured terms
(:func:`interpretable_ae.simulate.plant_stimulation`), which sets ``obs['condition']``.
Its output is read by :func:`iae_pipeline.prepare.preprocess.prepare_from_config` in place of
the dataset's own files.

With ``donors: n`` every cell is also given one of ``n`` simulated donors
(``obs['donor']``, drawn at random and independently of the condition, so every donor has
cells in both conditions: a paired design with no donor effect). They let the donor-level
test run on the demo; they are labels, not biology.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from iae_pipeline.files import staged
from iae_pipeline.prepare.datasets import CONDITION, load_dataset
from iae_pipeline.prepare.orthologs import read_orthologs
from iae_pipeline.prepare.preprocess import annotated_lognorm, load_gene_sets
from interpretable_ae.genesets import GeneSetError
from interpretable_ae.simulate import plant_stimulation

log = logging.getLogger(__name__)
DONOR_KEY = "donor"
DONOR_STREAM = 2  # a stream of its own: the planted draws do not change with donors


def simulate_dataset(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    simulation: Mapping[str, Any],
    *,
    data_type: str,
    species: str = "human",
    orthologs: pd.DataFrame | None = None,
    target_sum: float | None = 1e4,
    min_overlap: float = 0.2,
    name: str = "dataset",
) -> ad.AnnData:
    """A dataset's annotated genes, log-normalised, with a planted stimulation: the demo.

    Parameters
    ----------
    adata
        A loaded dataset (not modified).
    gene_sets
        ``{term: human symbols}``.
    simulation
        The ``datasets.<name>.simulation`` settings: ``terms`` (whose genes are planted),
        ``strength``, ``fraction``, ``detection``, ``extra_genes``, ``extra_strength``,
        ``seed`` (see :func:`interpretable_ae.simulate.plant_stimulation`) and ``donors``
        (:func:`simulated_donors`, in ``obs['donor']``).
    data_type, species, orthologs, target_sum, min_overlap, name
        As for :func:`iae_pipeline.prepare.preprocess.annotated_lognorm`.

    Returns
    -------
    anndata.AnnData
        Log-normalised cells with ``obs['condition']`` (``control`` / ``stimulated``) and
        ``uns['simulation']``.

    Raises
    ------
    GeneSetError
        A simulation term that is not among the gene sets.

    Examples
    --------
    >>> simulated = simulate_dataset(
    ...     adata, gene_sets, {"terms": ["HALLMARK_INTERFERON_GAMMA_RESPONSE"], "strength": 2.0},
    ...     data_type="lognorm")  # doctest: +SKIP
    """
    adata, sets, _ = annotated_lognorm(
        adata,
        gene_sets,
        data_type=data_type,
        species=species,
        orthologs=orthologs,
        target_sum=target_sum,
        min_overlap=min_overlap,
        name=name,
    )
    terms = list(simulation.get("terms") or [])
    missing = [t for t in terms if t not in sets]
    if not terms or missing:
        raise GeneSetError(
            f"{name}: simulation terms {missing or terms} not in the gene sets; name terms of "
            f"the dataset's gene sets (e.g. {list(gene_sets)[:2]})"
        )
    genes = [g for t in terms for g in sets[t]]
    out = plant_stimulation(
        adata,
        genes,
        strength=float(simulation.get("strength", 1.0)),
        fraction=float(simulation.get("fraction", 0.5)),
        detection=float(simulation.get("detection", 0.8)),
        seed=int(simulation.get("seed", 0)),
        terms=terms,
        extra_genes=int(simulation.get("extra_genes", 0)),
        extra_strength=simulation.get("extra_strength"),
    )
    n_donors = int(simulation.get("donors", 0))
    if n_donors:
        out.obs[DONOR_KEY] = simulated_donors(
            out.n_obs, n_donors, int(simulation.get("seed", 0)), name
        )
    log.info(
        "%s: planted a stimulation on %d genes (of %s, and %d more at random) in %d cells",
        name, out.uns["simulation"]["n_genes_planted"], terms,
        out.uns["simulation"]["extra_genes"], int((out.obs[CONDITION] == "stimulated").sum()),
    )  # fmt: skip
    return out


def simulated_donors(
    n_cells: int, n_donors: int, seed: int, name: str = "dataset"
) -> pd.Categorical:
    """Simulated donor labels, ``donor1`` ... ``donor<n>``, drawn uniformly for each cell.

    Drawn from a random stream of their own, so that the planted draws do not change with
    the number of donors.

    Parameters
    ----------
    n_cells
        How many labels.
    n_donors
        How many donors, from 2 to ``n_cells``.
    seed
        Seeds the draw.
    name
        The dataset's name, for the message.

    Returns
    -------
    pandas.Categorical
        One label per cell.

    Raises
    ------
    ValueError
        ``n_donors`` out of range.
    """
    if not 2 <= n_donors <= n_cells:
        raise ValueError(
            f"{name}: simulation.donors must be between 2 and the {n_cells} cells, got {n_donors}"
        )
    rng = np.random.default_rng((int(seed), DONOR_STREAM))
    labels = [f"donor{i + 1}" for i in range(n_donors)]
    return pd.Categorical(np.asarray(labels)[rng.integers(0, n_donors, n_cells)], categories=labels)


def simulate_from_config(
    dataset: Mapping[str, Any],
    files: Mapping[str, str],
    gmt_paths: Sequence[str | Path],
    geneset_specs: Sequence[Mapping[str, Any]],
    orthologs: str | Path | None,
    output: str | Path,
) -> ad.AnnData:
    """Load one dataset, plant its configured condition and write it: the ``simulate`` rule.

    Parameters
    ----------
    dataset
        The dataset's settings, with ``simulation``.
    files
        Its files by role.
    gmt_paths, geneset_specs
        Its gene sets (:func:`iae_pipeline.prepare.preprocess.load_gene_sets`).
    orthologs
        The human-mouse table, for mouse data.
    output
        Where to write; via a temporary file, so it is whole or absent.

    Returns
    -------
    anndata.AnnData
        The simulated data, as written.
    """
    name = str(dataset.get("name", "dataset"))
    opts = dict(dataset.get("preprocess") or {})
    gene_sets = load_gene_sets(gmt_paths, geneset_specs)
    species = str(dataset.get("species", "human"))
    table = read_orthologs(orthologs) if orthologs and species == "mouse" else None
    adata, data_type = load_dataset(dataset, files)
    out = simulate_dataset(
        adata,
        gene_sets,
        dict(dataset["simulation"]),
        data_type=data_type,
        species=species,
        orthologs=table,
        target_sum=opts.get("target_sum", 1e4),
        min_overlap=float(opts.get("min_overlap", 0.2)),
        name=name,
    )
    with staged(output, suffix=".part.h5ad") as tmp:
        out.write_h5ad(tmp)
    return out
