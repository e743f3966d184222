"""Donor-aware term tests: the condition effect on each factor, with the sample as the unit.

Cells of one donor are not independent replicates: a cell-level test of a factor against
the condition counts thousands of cells where the design has a handful of donors, and its
p-values are far too small. Here each factor's loadings are first standardised (divided by
their standard deviation over all cells, so that effects of different factors compare) and
averaged per sample and condition (a pseudobulk of the loadings); the test then compares
those averages:

- **paired** (every sample seen in both conditions, e.g. Kang's 8 donors, control and
  IFN-β): the paired t-test of the per-sample differences (``scipy.stats.ttest_rel``), or,
  with ``test: wilcoxon``, the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``);
- **unpaired** (each sample in one condition, e.g. Liao's patients and healthy controls):
  Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``), or, with ``test: wilcoxon``,
  the Mann-Whitney U test (``scipy.stats.mannwhitneyu``).

The t-tests are the default: a per-sample mean of hundreds of cells is close to normal, and
with 4 to 10 samples the rank tests cannot reach small p-values at all (8 pairs: the exact
signed-rank test's smallest two-sided p is 2/2⁸ = 0.0078; 4 against 9 samples: Mann-Whitney's
is 2/715 = 0.0028), while Benjamini-Hochberg over 300 terms asks 0.00017 of the best one.
The rank tests are the choice when a few samples may be outliers. p-values are corrected
over the tested factors of one model with Benjamini-Hochberg
(``statsmodels.stats.multitest.multipletests(method="fdr_bh")``).

A dataset without a sample key gets no test at all: :class:`NoSamples` says so, rather
than a cell-level p-value presented as a donor-level one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

from iae_pipeline.contract import validate_factor_anndata
from iae_pipeline.samples import Design, make_design
from interpretable_ae.genesets import display_name

log = logging.getLogger(__name__)

#: values of the loadings standardised at once in :func:`pseudobulk` (float64: 32 MB)
BLOCK_ELEMENTS = 1 << 22
RESULT_COLUMNS = (
    "model",
    "term",
    "display_name",
    "kind",
    "active",
    "test",
    "n_samples",
    "mean_control",
    "mean_case",
    "effect",
    "statistic",
    "pvalue",
    "padj",
    "significant",
)


def pseudobulk(
    factors: ad.AnnData, design: Design, condition_key: str = "condition"
) -> pd.DataFrame:
    """Each sample's mean standardised factor values, per condition.

    Parameters
    ----------
    factors
        A factor file with the samples in ``obs``.
    design
        :func:`iae_pipeline.samples.make_design`; samples with fewer than its
        ``min_cells`` cells in a condition are left out.
    condition_key
        The condition's column.

    Computed ``BLOCK_ELEMENTS`` values at a time (a block of factors in float64), never on
    a float64 copy of all loadings (at 200,000 cells x 300 factors that copy and its
    standardised twin were 1 GB); each factor's numbers are the same either way.

    Returns
    -------
    pandas.DataFrame
        Rows (sample, condition), one column per factor, plus ``n_cells``.
    """
    X = factors.X.toarray() if hasattr(factors.X, "toarray") else np.asarray(factors.X)
    keys = pd.MultiIndex.from_arrays(
        [
            factors.obs[design.sample_key].astype(str).to_numpy(),
            factors.obs[condition_key].astype(str).to_numpy(),
        ],
        names=["sample", "condition"],
    )
    names = list(map(str, factors.var_names))
    width = max(1, BLOCK_ELEMENTS // max(X.shape[0], 1))
    parts = []
    for start in range(0, X.shape[1], width):
        block = np.asarray(X[:, start : start + width], dtype=np.float64)
        sd = block.std(axis=0)
        block /= np.where(sd > 0, sd, 1.0)
        frame = pd.DataFrame(block, index=keys, columns=names[start : start + width])
        parts.append(frame.groupby(level=["sample", "condition"]).mean())
    means = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=keys.unique())
    means["n_cells"] = pd.Series(1, index=keys).groupby(level=["sample", "condition"]).size()
    small = means.index[means["n_cells"] < design.min_cells]
    if len(small):
        log.info(
            "%d (sample, condition) group(s) with fewer than %d cells left out: %s",
            len(small), design.min_cells, [f"{s}/{c}" for s, c in small[:5]],
        )  # fmt: skip
    return means[means["n_cells"] >= design.min_cells]


def _units(bulk: pd.DataFrame, design: Design, factor: str) -> tuple[np.ndarray, np.ndarray]:
    """The control and case values of one factor: aligned by sample when paired."""
    values = bulk[factor].unstack("condition")
    for level in (design.control, design.case):
        if level not in values:
            values[level] = np.nan
    if design.paired:
        values = values[[design.control, design.case]].dropna()
        return values[design.control].to_numpy(), values[design.case].to_numpy()
    return values[design.control].dropna().to_numpy(), values[design.case].dropna().to_numpy()


def _test(control: np.ndarray, case: np.ndarray, design: Design) -> tuple[float, float]:
    """(statistic, two-sided p) of case against control."""
    if design.paired:
        if design.test == "t":
            res = stats.ttest_rel(case, control)
        else:
            res = stats.wilcoxon(case - control, zero_method="wilcox")
    elif design.test == "t":
        res = stats.ttest_ind(case, control, equal_var=False)
    else:
        res = stats.mannwhitneyu(case, control, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def donor_test(
    factors: ad.AnnData,
    design: Design,
    *,
    model: str = "",
    alpha: float = 0.05,
    condition_key: str = "condition",
    min_samples: int = 3,
) -> pd.DataFrame:
    """The donor-level test of every active factor of one model: samples, not cells, are the
    units.

    Parameters
    ----------
    factors
        A factor file with the samples in ``obs``.
    design
        :func:`iae_pipeline.samples.make_design`: paired or not, t-test or Wilcoxon.
    model
        The model's name, in the table.
    alpha
        The false discovery rate of ``significant``.
    condition_key
        The condition's column.
    min_samples
        Samples (pairs when paired) needed per condition.

    Returns
    -------
    pandas.DataFrame
        One row per factor: the means of the control and case samples, the ``effect`` (case
        minus control, in standard deviations of the factor's values over cells), the
        statistic, its p-value and the Benjamini-Hochberg adjusted p-value over this model's
        tested factors. Switched-off factors are listed untested (NaN).

    Raises
    ------
    ValueError
        Fewer than ``min_samples`` samples per condition.
    """
    validate_factor_anndata(factors, where=model or "factors")
    bulk = pseudobulk(factors, design, condition_key)
    counts = bulk.reset_index().groupby("condition")["sample"].nunique()
    n_ctrl, n_case = int(counts.get(design.control, 0)), int(counts.get(design.case, 0))
    if design.paired:
        wide = bulk["n_cells"].unstack("condition")
        n_pairs = int(wide.reindex(columns=[design.control, design.case]).notna().all(1).sum())
        enough, have = n_pairs >= min_samples, f"{n_pairs} pair(s)"
    else:
        enough, have = min(n_ctrl, n_case) >= min_samples, f"{n_ctrl} + {n_case} sample(s)"
    if not enough:
        raise ValueError(
            f"{model or 'factors'}: {have} with at least {design.min_cells} cells in "
            f"obs['{design.sample_key}']; the test needs {min_samples} per condition: lower "
            "analyses.donor_test.min_cells or use a dataset with more samples"
        )
    rows = []
    for k, factor in enumerate(map(str, factors.var_names)):
        active = bool(factors.var["active"].iloc[k])
        control, case = _units(bulk, design, factor)
        statistic = pvalue = np.nan
        if active:
            statistic, pvalue = _test(control, case, design)
        rows.append(
            {
                "model": model,
                "term": factor,
                "display_name": display_name(factor),
                "kind": str(factors.var["kind"].iloc[k]),
                "active": active,
                "test": design.test_name,
                "n_samples": len(control) if design.paired else len(control) + len(case),
                "mean_control": float(np.mean(control)),
                "mean_case": float(np.mean(case)),
                "effect": float(np.mean(case) - np.mean(control)),
                "statistic": statistic,
                "pvalue": pvalue,
            }
        )
    from statsmodels.stats.multitest import multipletests

    table = pd.DataFrame(rows)
    tested = table["pvalue"].notna()
    table["padj"] = np.nan
    if tested.any():
        table.loc[tested, "padj"] = multipletests(table.loc[tested, "pvalue"], method="fdr_bh")[1]
    table["significant"] = table["padj"] < alpha
    return table[list(RESULT_COLUMNS)]


def donor_tests(
    runs: Mapping[str, ad.AnnData],
    design_spec: Mapping[str, object],
    *,
    alpha: float = 0.05,
    where: str = "dataset",
) -> tuple[pd.DataFrame, Design]:
    """:func:`donor_test` for each model.

    Parameters
    ----------
    runs
        ``{model: factors}``.
    design_spec
        ``sample_key``, ``paired`` and optionally ``control``, ``test``, ``min_cells``.
    alpha
        The false discovery rate.
    where
        Names the dataset in messages.

    Returns
    -------
    table : pandas.DataFrame
        Every model's rows, sorted by model then p-value.
    design : Design
        The design used.

    Raises
    ------
    NoSamples
        No sample key.
    ValueError
        A design that does not fit the cells.
    """
    if not runs:
        raise ValueError(f"{where}: no factor files given")
    first = next(iter(runs.values()))
    design = make_design(
        first.obs,
        design_spec.get("sample_key"),  # type: ignore[arg-type]
        design_spec.get("paired"),  # type: ignore[arg-type]
        control=design_spec.get("control"),  # type: ignore[arg-type]
        test=str(design_spec.get("test", "t")),
        min_cells=int(design_spec.get("min_cells", 10)),  # type: ignore[call-overload]
        where=where,
    )
    frames = [donor_test(f, design, model=m, alpha=alpha) for m, f in runs.items()]
    table = pd.concat(frames, ignore_index=True)
    order = table.sort_values(["pvalue"], kind="stable", na_position="last").index
    table = table.loc[order].reset_index(drop=True)
    model_order = {m: i for i, m in enumerate(runs)}
    table = table.sort_values("model", key=lambda s: s.map(model_order), kind="stable")
    return table.reset_index(drop=True), design


def empty_result() -> pd.DataFrame:
    """The columns of a result table and no rows (a dataset without a sample key).

    Returns
    -------
    pandas.DataFrame
    """
    return pd.DataFrame(columns=list(RESULT_COLUMNS))
