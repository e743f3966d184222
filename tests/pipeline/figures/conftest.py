"""Scores of the figure tests: two replicates of three models, scored as the workflow does."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.figures import fake_factors
from iae_pipeline.score.scoring import combine_replicates, score_runs


@pytest.fixture(scope="session")
def scores() -> pd.DataFrame:
    """Two replicates (seeds) of each model, scored as the workflow does."""
    tables = []
    for rep in (0, 1):
        runs = {
            "ae": fake_factors("ae", 3.0, seed=1 + 10 * rep),
            "slalom": fake_factors("slalom", 2.0, seed=2 + 10 * rep),
            "slalom_dense": fake_factors("slalom_dense", 0.3, seed=3 + 10 * rep, n_dense=2),
        }
        tables.append(score_runs(runs, "demo", cv_folds=3, seed=0).assign(replicate=rep))
    return combine_replicates(tables)
