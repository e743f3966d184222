"""Shared fixtures: where the real test files live, and small prepared data."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real files); tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test files not found at {SHARED_DATA} (a user's clone has no ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def buettner_h5ad(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Buettner 2015 mESC (log expression) as a user's .h5ad: stage in obs['stage']."""
    table = pd.read_csv(shared_data / "expression" / "buettner2015_mesc.csv.gz", index_col=0)
    stage = table.index.map({1: "G1", 2: "S", 3: "G2M"}).astype(str)
    adata = ad.AnnData(
        X=table.to_numpy(dtype=np.float32),
        obs=pd.DataFrame(
            {"stage": stage, "line": "mESC"}, index=[f"cell{i}" for i in range(len(table))]
        ),
        var=pd.DataFrame(index=table.columns.astype(str)),
    )
    path = tmp_path_factory.mktemp("buettner") / "buettner.h5ad"
    adata.write_h5ad(path)
    return path
