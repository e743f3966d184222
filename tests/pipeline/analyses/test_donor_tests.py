"""Donor-level tests: pseudobulk of the loadings per sample, paired or unpaired tests, BH."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from scipy import stats
from statsmodels.stats.multitest import multipletests

from helpers.drawn import points, record_saved_figures, same_points
from helpers.script_runner import run_as_snakemake
from iae_pipeline.analyses.donor_tests import RESULT_COLUMNS, donor_test, donor_tests, pseudobulk
from iae_pipeline.contract import make_factor_anndata
from iae_pipeline.samples import NoSamples, make_design

FACTORS = ["RESPONDS", "DONOR_ONLY", "NOISE", "OFF"]


def simulated(paired: bool, n_donors: int = 8, cells: int = 60, seed: int = 0) -> ad.AnnData:
    """Factors of cells from ``n_donors`` donors: RESPONDS shifts with the condition in
    every donor; DONOR_ONLY differs between donors, and the stimulated cells happen to come
    from donors with high values (unpaired design) or the shift is absent (paired);
    NOISE is noise; OFF is switched off."""
    rng = np.random.default_rng(seed)
    rows, obs = [], []
    for d in range(n_donors):
        donor_level = rng.normal(0, 1.0)
        conditions = ("control", "stimulated") if paired else (
            ("control",) if d < n_donors // 2 else ("stimulated",)
        )  # fmt: skip
        for cond in conditions:
            stim = cond == "stimulated"
            responds = rng.normal(0, 1, cells) + 1.5 * stim + 0.3 * donor_level
            donor_only = rng.normal(0, 1, cells) + 2.0 * donor_level
            if not paired:  # high-value donors are the stimulated ones: confounded
                donor_only += 1.0 * stim
            rows.append(np.c_[responds, donor_only, rng.normal(0, 1, cells), np.zeros(cells)])
            obs += [(f"d{d}", cond)] * cells
    X = np.vstack(rows)
    obs = pd.DataFrame(obs, columns=["donor", "condition"], index=[f"c{i}" for i in range(len(X))])
    obs["cell_type"] = "x"
    return make_factor_anndata(
        X, obs, FACTORS, ["annotated"] * 4, np.ones((5, 4)), [f"g{i}" for i in range(5)],
        [True, True, True, False], {"model": "t", "setup": "t", "seed": 0, "seconds": 0.0},
    )  # fmt: skip


def test_paired_t_test_on_donor_means_matches_scipy() -> None:
    adata = simulated(paired=True)
    design = make_design(adata.obs, "donor", True)
    assert design.test_name == "paired t-test"
    table = donor_test(adata, design, model="m")
    assert list(table.columns) == list(RESULT_COLUMNS)
    table = table.set_index("term")
    # by hand: standardise, average per donor and condition, paired t-test
    z = adata.X[:, 0] / adata.X[:, 0].std()
    means = (
        pd.DataFrame({"z": z, **adata.obs[["donor", "condition"]]})
        .groupby(["donor", "condition"])["z"]
        .mean()
        .unstack()
    )
    expected = stats.ttest_rel(means["stimulated"], means["control"])
    assert table.loc["RESPONDS", "pvalue"] == pytest.approx(expected.pvalue)
    assert table.loc["RESPONDS", "statistic"] == pytest.approx(expected.statistic)
    assert table.loc["RESPONDS", "effect"] == pytest.approx(
        (means["stimulated"] - means["control"]).mean()
    )
    assert table.loc["RESPONDS", "n_samples"] == 8 and table.loc["RESPONDS", "significant"]
    assert not table.loc["NOISE", "significant"]
    assert np.isnan(table.loc["OFF", "pvalue"]) and not table.loc["OFF", "significant"]
    tested = table["pvalue"].notna()
    bh = multipletests(table.loc[tested, "pvalue"], method="fdr_bh")[1]
    assert np.allclose(table.loc[tested, "padj"], bh)


def test_donor_level_test_is_not_fooled_by_cell_numbers() -> None:
    """A factor that differs between donors but not with the condition: a cell-level test
    calls it significant (thousands of 'samples'); the donor-level test does not."""
    adata = simulated(paired=False, n_donors=8, seed=3)
    design = make_design(adata.obs, "donor", False)
    assert design.test_name == "Welch's t-test"
    table = donor_test(adata, design).set_index("term")
    stim = adata.obs["condition"].to_numpy() == "stimulated"
    x = adata[:, "DONOR_ONLY"].X.ravel()
    cell_level = stats.ttest_ind(x[stim], x[~stim], equal_var=False).pvalue
    assert cell_level < 1e-10
    assert table.loc["DONOR_ONLY", "pvalue"] > 0.01
    assert table.loc["DONOR_ONLY", "n_samples"] == 8
    assert table.loc["RESPONDS", "pvalue"] < table.loc["DONOR_ONLY", "pvalue"]


@pytest.mark.parametrize(
    ("paired", "name", "scipy_test"),
    [
        (True, "Wilcoxon signed-rank", lambda c, s: stats.wilcoxon(s - c)),
        (False, "Mann-Whitney U", lambda c, s: stats.mannwhitneyu(s, c)),
    ],
)
def test_rank_tests(paired, name, scipy_test) -> None:
    adata = simulated(paired=paired, n_donors=10)
    design = make_design(adata.obs, "donor", paired, test="wilcoxon")
    assert design.test_name == name
    table = donor_test(adata, design).set_index("term")
    bulk = pseudobulk(adata, design)["RESPONDS"].unstack("condition")
    if paired:
        expected = scipy_test(bulk["control"].to_numpy(), bulk["stimulated"].to_numpy())
    else:
        expected = scipy_test(bulk["control"].dropna().to_numpy(),
                              bulk["stimulated"].dropna().to_numpy())  # fmt: skip
    assert table.loc["RESPONDS", "pvalue"] == pytest.approx(expected.pvalue)


def test_small_groups_are_left_out_and_too_few_samples_refused() -> None:
    adata = simulated(paired=True, n_donors=4)
    d0_control = ((adata.obs["donor"] == "d0") & (adata.obs["condition"] == "control")).to_numpy()
    keep = ~d0_control | (np.cumsum(d0_control) <= 3)  # d0 keeps 3 control cells
    small = adata[keep].copy()
    design = make_design(small.obs, "donor", True, min_cells=10)
    bulk = pseudobulk(small, design)
    assert ("d0", "control") not in bulk.index and ("d0", "stimulated") in bulk.index
    table = donor_test(small, design).set_index("term")
    assert table.loc["RESPONDS", "n_samples"] == 3  # d0 has no pair left
    fewer = small[small.obs["donor"] != "d1"].copy()
    with pytest.raises(ValueError, match="2 pair\\(s\\) with at least 10 cells"):
        donor_test(fewer, design)


def test_several_models_sorted_by_p() -> None:
    runs = {"ae": simulated(paired=True, seed=1), "slalom": simulated(paired=True, seed=2)}
    table, design = donor_tests(runs, {"sample_key": "donor", "paired": True}, where="toy")
    assert table["model"].tolist()[:4] == ["ae"] * 4
    assert table.groupby("model")["term"].first().tolist() == ["RESPONDS", "RESPONDS"]
    with pytest.raises(NoSamples):
        donor_tests(runs, {"sample_key": "", "paired": None})


def _run(tmp_path: Path, factors: list[str], design: dict) -> tuple[int, dict]:
    out = {k: str(tmp_path / f"donor.{k}") for k in ("tsv", "html", "png", "pdf")}
    status = run_as_snakemake(
        "donor_test",
        input={"factors": factors},
        output=out,
        params={
            "dataset": "toy",
            "models": ["ae"] if factors else [],
            "design": design,
            "alpha": 0.05,
            "labels": {"ae": "AE"},
        },  # fmt: skip
        log=[str(tmp_path / "donor.log")],
    )
    return status, out


def test_script_runs_the_test(tmp_path: Path, monkeypatch) -> None:
    saved = record_saved_figures(monkeypatch)
    path = tmp_path / "ae.h5ad"
    simulated(paired=True).write_h5ad(path)
    design = {"sample_key": "donor", "paired": True, "test": "t", "min_cells": 10}
    status, out = _run(tmp_path, [str(path)], design)
    assert status == 0, (tmp_path / "donor.log").read_text()
    table = pd.read_csv(out["tsv"], sep="\t")
    assert table.iloc[0]["term"] == "RESPONDS" and table.iloc[0]["test"] == "paired t-test"
    assert imread(out["png"]).shape[0] > 300
    # the volcano: a point per tested factor at (effect, -log10 p); the significant ones,
    # and only they, filled in one colour
    (fig,) = saved
    assert fig.axes, "no panel drawn"
    tested = table[table["pvalue"].notna()]
    expected = np.c_[tested["effect"], -np.log10(tested["pvalue"])]
    assert len(tested) == 3 and same_points(points(fig.axes[0]), expected)
    drawn = [c for c in fig.axes[0].collections if len(c.get_offsets())]
    filled = [c for c in drawn if len(c.get_facecolor()) and c.get_facecolor()[:, 3].min() > 0]
    significant = tested[tested["significant"]]
    assert len(significant) >= 1 and filled, "the significant factors are not filled"
    assert same_points(
        np.concatenate([c.get_offsets() for c in filled]),
        np.c_[significant["effect"], -np.log10(significant["pvalue"])],
    )


def test_script_without_samples_says_so(tmp_path: Path) -> None:
    status, out = _run(tmp_path, [], {"sample_key": "", "paired": None})
    assert status == 0
    assert pd.read_csv(out["tsv"], sep="\t").empty
    assert "no sample key" in Path(out["html"]).read_text()
    assert "no donor-level test was run" in (tmp_path / "donor.log").read_text()
    assert Path(out["pdf"]).read_bytes().startswith(b"%PDF")
