"""The calibration in memory, as the workflow runs it from files: the autoencoder fitted on
the real mask (replicates) and on random masks, every fit's response shares, then
:func:`iae_pipeline.analyses.calibration.calibrate` with the true labels and with labels
permuted within samples. For the slow tests and ``benchmarks/bench_calibration.py``.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from iae_pipeline.analyses.calibration import Calibration, GroupRule, calibrate, split_sentence
from iae_pipeline.analyses.null import NullSettings
from iae_pipeline.analyses.random_masks import null_seed, random_mask_data
from iae_pipeline.fit.autoencoder import fit_autoencoder
from iae_pipeline.score.response import permuted_condition, response_shares
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import build_mask

# the authors' Kang notebook (config/paper.yaml)
PAPER = {"epochs": 80, "batch_size": 62, "lr": 1e-3, "lambda0": 0.1, "lambda1": 0.93,
         "lambda3": 0.57}  # fmt: skip


@dataclass
class Run:
    """The fits of one dataset and their calibration with the true and permuted labels."""

    prepared: ad.AnnData
    real: list[ad.AnnData]
    null: list[ad.AnnData]
    true: Calibration
    permuted: Calibration


def prepared_from(adata: ad.AnnData, gene_sets: Mapping[str, Sequence[str]]) -> ad.AnnData:
    """Prepared data from simulated log-normalised cells and their gene sets."""
    mask, terms = build_mask(adata.var_names, gene_sets, 1)
    out = ad.AnnData(
        X=sp.csr_matrix(np.asarray(adata.X, dtype=np.float32)),
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=adata.var_names.copy()),
    )
    out.varm[MASK_KEY] = mask
    out.uns[TERMS_KEY] = np.asarray(terms, dtype=object)
    return out


def _fit(job: tuple[ad.AnnData, dict, int, int | None]) -> ad.AnnData:
    """One fit's factor file: ``(prepared, options, seed, random-mask seed or None)``."""
    prepared, options, seed, mask_seed = job
    torch.set_num_threads(1)
    data = prepared if mask_seed is None else random_mask_data(prepared, mask_seed)
    return fit_autoencoder(data, options, seed=seed, progress=False)[1]


@functools.cache
def _pool() -> ProcessPoolExecutor:
    """Up to two worker processes (spawned: no forked torch state), kept until exit."""
    workers = min(2, os.cpu_count() or 1)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    atexit.register(pool.shutdown)
    return pool


def fits(prepared: ad.AnnData, replicates: int, random: int, options=PAPER, seed: int = 0):
    """``(real, null)`` factor files: replicate r with seed ``seed + r``, random fit k on the
    mask permuted with seed ``seed + k`` (as the workflow seeds them), each fit on one torch
    thread, two fits at a time (the fits are seeded: the same in any process)."""
    jobs = [(prepared, dict(options), seed + r, None) for r in range(replicates)]
    jobs += [(prepared, dict(options), null_seed(seed, k), null_seed(seed, k))
             for k in range(random)]  # fmt: skip
    out = list(_pool().map(_fit, jobs))
    return out[:replicates], out[replicates:]


def long_table(shares: pd.DataFrame, factors: ad.AnnData, column: str, i: int) -> pd.DataFrame:
    """One fit's shares (one labelling) as score-table rows."""
    return pd.DataFrame({column: i, "term": shares.index,
                         "kind": factors.var["kind"].astype(str).to_numpy(),
                         "response_share": shares.to_numpy()})  # fmt: skip


def run(
    prepared: ad.AnnData,
    replicates: int,
    random: int,
    *,
    sample_key: str | None = None,
    permute: int = 0,
    label_permutations: int = 200,
    settings: NullSettings | None = None,
    **groups: Any,
) -> Run:
    """Fit, then calibrate the response share with the true labels and with the labels
    permuted within samples (seed ``permute``, permutation 0), each with the label null of
    ``label_permutations`` more permutations (as the workflow's score jobs compute them)."""
    real, null = fits(prepared, replicates, random)
    condition = prepared.obs["condition"]
    samples = prepared.obs[sample_key] if sample_key else None
    labels = [condition] + [
        permuted_condition(condition, permute, samples, index=i)
        for i in range(label_permutations + 1)
    ]
    real_shares = [response_shares(f, prepared, labels, sample_key=sample_key) for f in real]
    null_shares = [response_shares(f, prepared, labels[:2], sample_key=sample_key) for f in null]
    label_null = [s.iloc[2:].reset_index(drop=True) for s in real_shares]
    terms = [str(t) for t in prepared.uns[TERMS_KEY]]
    out = []
    for row in (0, 1):  # the true labels, then the permuted ones
        r = pd.concat([long_table(s.iloc[row], f, "replicate", i)
                       for i, (s, f) in enumerate(zip(real_shares, real, strict=True))])  # fmt: skip
        n = pd.concat([long_table(s.iloc[row], f, "fit", i)
                       for i, (s, f) in enumerate(zip(null_shares, null, strict=True))])  # fmt: skip
        out.append(calibrate(r, n, prepared.varm[MASK_KEY], terms, label_null=label_null,
                             rule=GroupRule(**groups), settings=settings))  # fmt: skip
    return Run(prepared, real, null, *out)


def group_of(calibration: Calibration, term: str) -> pd.Series:
    """The group row holding ``term``."""
    group = calibration.terms.set_index("term").loc[term, "group"]
    return calibration.groups.set_index("group").loc[group]


def significant(calibration: Calibration) -> tuple[int, int]:
    """How many groups and terms pass the FDR level."""
    return int(calibration.groups["significant"].sum()), int(calibration.terms["significant"].sum())


def describe(calibration: Calibration, term: str) -> str:
    """One line on the group of ``term``: rank, share, spread, null p, FDR, the split."""
    row = group_of(calibration, term)
    return (
        f"group {row['group_name']} ({row['members']} terms): rank {row['rank']} of "
        f"{len(calibration.groups)}, share {row['score_mean']:.2f} ± {row['score_sd']:.2f}, "
        f"random groups of its shape: 95 % below {row['null_q95']:.2f}; p random masks "
        f"{row['pvalue_mask']:.2g} ({row['p_method']}), p labels {row['pvalue_label']:.2g}, "
        f"FDR {row['padj']:.2g}; {split_sentence(calibration.split, int(row.name))}"
    )


def null_spread(values: np.ndarray) -> str:
    """Median and range, for the docs."""
    return f"median {np.median(values):.2f} ({np.min(values):.2f}–{np.max(values):.2f})"
