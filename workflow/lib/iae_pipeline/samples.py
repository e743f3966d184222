"""The sample design of a dataset: which obs column holds each cell's sample (donor,
patient), whether every sample is seen in both conditions (paired) or in one, and which
condition level is the control.

Plain pandas: the preparation step checks a configured design against the prepared cells
before any fit (:func:`iae_pipeline.prepare.checks.check_ready_to_fit`), and the donor-level test
(:mod:`iae_pipeline.analyses.donor_tests`) and the baselines use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

log = logging.getLogger(__name__)

TESTS = ("t", "wilcoxon")
#: condition levels taken as the reference when ``control`` is not configured
CONTROL_NAMES = ("control", "ctrl", "healthy", "hc", "other", "unstimulated", "untreated")


class NoSamples(ValueError):
    """The dataset has no sample key: a donor-level test cannot be run."""


@dataclass(frozen=True)
class Design:
    """How the samples of a dataset relate to its condition."""

    sample_key: str
    paired: bool
    control: str
    case: str
    test: str = "t"
    min_cells: int = 10

    @property
    def test_name(self) -> str:
        """The test's name as it appears in tables and figures."""
        if self.test == "t":
            return "paired t-test" if self.paired else "Welch's t-test"
        return "Wilcoxon signed-rank" if self.paired else "Mann-Whitney U"


def condition_levels(
    values: pd.Series, control: str | None = None, where: str = "obs['condition']"
) -> tuple[str, str]:
    """The reference and the case among the two levels of a condition.

    Parameters
    ----------
    values
        The condition of every cell.
    control
        The reference level, when the config names it.
    where
        Names the column in messages.

    Returns
    -------
    control : str
        ``control`` when given, else the one level named like a control
        (:data:`CONTROL_NAMES`), else the first in sort order (logged).
    case : str
        The other level.

    Raises
    ------
    ValueError
        Not exactly two levels, or a ``control`` that is not one of them.

    Examples
    --------
    >>> import pandas as pd
    >>> condition_levels(pd.Series(["stim", "ctrl", "stim"]))
    ('ctrl', 'stim')
    """
    levels = sorted(set(values.astype(str)))
    if len(levels) != 2:
        raise ValueError(f"{where} has {len(levels)} level(s) {levels[:5]}; the test needs two")
    if control is not None:
        if control not in levels:
            raise ValueError(
                f"{where}: control level '{control}' not found (levels: {levels}); fix "
                "datasets.<name>.control"
            )
        return control, next(lv for lv in levels if lv != control)
    named = [lv for lv in levels if lv.lower() in CONTROL_NAMES]
    if len(named) == 1:
        return named[0], next(lv for lv in levels if lv != named[0])
    log.info("%s: no level named like a control; taking '%s' as the reference", where, levels[0])
    return levels[0], levels[1]


def make_design(
    obs: pd.DataFrame,
    sample_key: str | None,
    paired: bool | None,
    *,
    control: str | None = None,
    test: str = "t",
    min_cells: int = 10,
    condition_key: str = "condition",
    where: str = "factors",
) -> Design:
    """Check a dataset's sample key against its cells and return its design.

    Parameters
    ----------
    obs
        The cells' annotations.
    sample_key
        The column naming each cell's sample (donor); empty or ``None``: no samples.
    paired
        Whether every sample has cells in both conditions (``True``) or in one.
    control
        The reference level of the condition (default: detected, see
        :func:`condition_levels`).
    test
        ``"t"`` or ``"wilcoxon"``.
    min_cells
        Samples with fewer cells in a condition are left out of the test.
    condition_key
        The condition's column.
    where
        Names the data in messages.

    Returns
    -------
    Design
        The sample key, pairing, control and case levels, test and minimum cells.

    Raises
    ------
    NoSamples
        No sample key: the donor-level test cannot run.
    ValueError
        A missing column, cells without a sample, ``paired`` unset, or a design that does
        not fit the cells (a paired design needs every sample in both conditions, an
        unpaired one every sample in one), naming the fix.
    """
    if not sample_key:
        raise NoSamples(
            f"{where}: no sample key: a donor-level test needs the sample (donor) of every "
            "cell; set datasets.<name>.sample_key (and paired) to run it"
        )
    if test not in TESTS:
        raise ValueError(f"test '{test}' is unknown; use one of {TESTS}")
    if min_cells < 1:
        raise ValueError(f"min_cells must be at least 1, got {min_cells}")
    for key in (sample_key, condition_key):
        if key not in obs:
            raise ValueError(
                f"{where}: obs['{key}'] is missing (obs keys: {list(obs.columns)[:12]}); set "
                "datasets.<name>.sample_key to a column of the cells' metadata"
            )
    if obs[sample_key].isna().any():
        raise ValueError(
            f"{where}: obs['{sample_key}'] has {int(obs[sample_key].isna().sum())} missing "
            "value(s); every cell needs a sample"
        )
    ctrl, case = condition_levels(obs[condition_key], control, f"{where} obs['{condition_key}']")
    conditions = (
        obs.groupby(obs[sample_key].astype(str), observed=True)[condition_key]
        .agg(lambda v: set(v.astype(str)))
        .to_dict()
    )
    both = [s for s, c in conditions.items() if len(c) == 2]
    if paired is None:
        raise ValueError(
            f"{where}: datasets.<name>.paired is not set; say whether every sample has cells "
            "in both conditions (true, e.g. donors before/after a stimulation) or in one (false)"
        )
    if paired and len(both) < len(conditions):
        single = sorted(set(conditions) - set(both))
        raise ValueError(
            f"{where}: paired design, but sample(s) {single[:5]} of obs['{sample_key}'] have cells "
            "in one condition only; set paired: false or drop those samples"
        )
    if not paired and both:
        raise ValueError(
            f"{where}: unpaired design, but sample(s) {both[:5]} of obs['{sample_key}'] have cells "
            "in both conditions; set paired: true (the same donors in both conditions)"
        )
    return Design(str(sample_key), bool(paired), ctrl, case, test, int(min_cells))
