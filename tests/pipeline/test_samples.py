"""The sample design: the sample key, paired or not, and the control level."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from iae_pipeline.samples import CONTROL_NAMES, Design, NoSamples, condition_levels, make_design


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


@pytest.mark.parametrize("control", CONTROL_NAMES)
def test_every_control_name_is_the_reference_in_any_case(control) -> None:
    for name in (control, control.upper(), control.title()):
        assert condition_levels(pd.Series(["zz_case", name])) == (name, "zz_case")
        assert condition_levels(pd.Series(["a_case", name])) == (name, "a_case")


def test_two_control_like_levels_fall_back_to_the_sort_order() -> None:
    assert condition_levels(pd.Series(["ctrl", "control"])) == ("control", "ctrl")
    assert condition_levels(pd.Series(["untreated", "stim"])) == ("untreated", "stim")


def test_the_four_tests_and_the_design_fields() -> None:
    paired = make_design(cells(True), "donor", True, min_cells=3)
    assert paired == Design("donor", True, "ctrl", "stim", "t", 3)
    names = {
        (p, t): make_design(cells(p), "donor", p, test=t).test_name
        for p in (True, False)
        for t in ("t", "wilcoxon")
    }
    assert names == {
        (True, "t"): "paired t-test",
        (False, "t"): "Welch's t-test",
        (True, "wilcoxon"): "Wilcoxon signed-rank",
        (False, "wilcoxon"): "Mann-Whitney U",
    }
    flipped = make_design(cells(True), "donor", True, control="stim")
    assert (flipped.control, flipped.case) == ("stim", "ctrl")
    renamed = cells(True).rename(columns={"condition": "group"})
    assert make_design(renamed, "donor", True, condition_key="group").case == "stim"


def test_the_refusals_name_the_key_and_the_fix() -> None:
    paired = cells(True)
    cases = [
        (dict(sample_key=""), NoSamples,
         r"^factors: no sample key: a donor-level test needs the sample \(donor\) of every cell; "
         r"set datasets.<name>.sample_key \(and paired\) to run it$"),
        (dict(min_cells=0), ValueError, r"^min_cells must be at least 1, got 0$"),
        (dict(test="z"), ValueError, r"^test 'z' is unknown; use one of \('t', 'wilcoxon'\)$"),
        (dict(sample_key="batch"), ValueError,
         r"^factors: obs\['batch'\] is missing \(obs keys: \['donor', 'condition'\]\); set "
         r"datasets.<name>.sample_key to a column of the cells' metadata$"),
        (dict(paired=None), ValueError,
         r"^factors: datasets.<name>.paired is not set; say whether every sample has cells in "
         r"both conditions \(true, e.g. donors before/after a stimulation\) or in one \(false\)$"),
        (dict(paired=False), ValueError,
         r"^factors: unpaired design, but sample\(s\) \['d0', 'd1', 'd2', 'd3'\] of "
         r"obs\['donor'\] have cells in both conditions; set paired: true \(the same donors in "
         r"both conditions\)$"),
    ]  # fmt: skip
    for changes, error, message in cases:
        options = {"sample_key": "donor", "paired": True} | changes
        with pytest.raises(error, match=message):
            make_design(paired, **options)
    with pytest.raises(
        ValueError,
        match=r"^x: paired design, but sample\(s\) \['d0', 'd1', 'd2', 'd3'\] of obs\['donor'\] "
        r"have cells in one condition only; set paired: false or drop those samples$",
    ):
        make_design(cells(False), "donor", True, where="x")
    with pytest.raises(ValueError, match=r"^w: control level 'z' not found \(levels: \['a', "):
        condition_levels(pd.Series(["b", "a"]), control="z", where="w")
    with pytest.raises(ValueError, match=r"^w has 3 level\(s\) \['a', 'b', 'c'\]; the test needs"):
        condition_levels(pd.Series(["a", "b", "c"]), where="w")


def test_long_lists_in_the_refusals_are_cut_at_five() -> None:
    with pytest.raises(
        ValueError, match=r"^obs\['condition'\] has 7 level\(s\) \['a', 'b', 'c', 'd', 'e'\];"
    ):
        condition_levels(pd.Series(list("abcdefg")))
    wide = cells(True).assign(**{f"c{i}": 0 for i in range(12)})  # 14 columns
    twelve = str(list(wide.columns)[:12])
    with pytest.raises(ValueError, match=r"obs keys: " + re.escape(twelve) + r"\); set"):
        make_design(wide, "batch", True)
    seven = cells(False, n_donors=14)  # 7 donors per condition
    with pytest.raises(
        ValueError, match=re.escape("sample(s) ['d0', 'd1', 'd10', 'd11', 'd12'] of")
    ):
        make_design(seven, "donor", True)
    both = cells(True, n_donors=7)
    with pytest.raises(ValueError, match=re.escape("sample(s) ['d0', 'd1', 'd2', 'd3', 'd4'] of")):
        make_design(both, "donor", False)


def test_one_cell_per_sample_and_unused_categories() -> None:
    assert make_design(cells(True), "donor", True, min_cells=1).min_cells == 1
    obs = cells(True)
    obs["donor"] = pd.Categorical(obs["donor"], categories=["d0", "d1", "d2", "d3", "gone"])
    assert make_design(obs, "donor", True).paired  # a category without cells is no sample


def test_defaults_and_where_the_condition_is_named() -> None:
    assert make_design(cells(True), "donor", True).min_cells == 10
    three = cells(True)
    three.loc[0, "condition"] = "other"
    with pytest.raises(ValueError, match=r"^x obs\['condition'\] has 3 level\(s\)"):
        make_design(three, "donor", True, where="x")
    with pytest.raises(
        ValueError,
        match=r"^obs\['condition'\]: control level 'z' not found \(levels: \['a', 'b'\]\); fix "
        r"datasets.<name>.control$",
    ):
        condition_levels(pd.Series(["b", "a"]), control="z")
