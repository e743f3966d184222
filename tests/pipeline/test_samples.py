"""The sample design: the sample key, paired or not, and the control level."""

from __future__ import annotations

import pandas as pd
import pytest

from iae_pipeline.samples import NoSamples, condition_levels, make_design


def cells(paired: bool, n_donors: int = 4, per_group: int = 3) -> pd.DataFrame:
    """obs of ``n_donors`` donors: each in both conditions (paired) or in one."""
    rows = []
    for d in range(n_donors):
        if paired:
            conditions = ("ctrl", "stim")
        else:
            conditions = ("ctrl",) if d < n_donors // 2 else ("stim",)
        rows += [(f"d{d}", c) for c in conditions for _ in range(per_group)]
    return pd.DataFrame(rows, columns=["donor", "condition"])


def test_condition_levels() -> None:
    assert condition_levels(pd.Series(["stim", "ctrl"])) == ("ctrl", "stim")
    assert condition_levels(pd.Series(["COVID-19", "healthy"])) == ("healthy", "COVID-19")
    assert condition_levels(pd.Series(["rods", "other"])) == ("other", "rods")
    assert condition_levels(pd.Series(["b", "a"])) == ("a", "b")  # sort order
    assert condition_levels(pd.Series(["b", "a"]), control="b") == ("b", "a")
    with pytest.raises(ValueError, match="control level 'z' not found"):
        condition_levels(pd.Series(["b", "a"]), control="z")
    with pytest.raises(ValueError, match="1 level"):
        condition_levels(pd.Series(["a", "a"]))


def test_designs() -> None:
    paired = make_design(cells(True), "donor", True)
    assert (paired.control, paired.case, paired.test_name) == ("ctrl", "stim", "paired t-test")
    unpaired = make_design(cells(False), "donor", False, test="wilcoxon")
    assert unpaired.test_name == "Mann-Whitney U"


def test_designs_that_do_not_fit_are_refused() -> None:
    paired, unpaired = cells(True), cells(False)
    with pytest.raises(NoSamples, match="no sample key"):
        make_design(paired, None, True)
    with pytest.raises(ValueError, match="obs\\['batch'\\] is missing"):
        make_design(paired, "batch", True)
    with pytest.raises(ValueError, match=r"'d0', 'd1', 'd2', 'd3'\] of obs.*set paired: false"):
        make_design(unpaired, "donor", True)
    with pytest.raises(ValueError, match="set paired: true"):
        make_design(paired, "donor", False)
    with pytest.raises(ValueError, match="paired is not set"):
        make_design(paired, "donor", None)
    with pytest.raises(ValueError, match="test 'z' is unknown"):
        make_design(paired, "donor", True, test="z")
    missing = paired.astype({"donor": object})
    missing.loc[0, "donor"] = None
    with pytest.raises(ValueError, match="1 missing value"):
        make_design(missing, "donor", True)
