"""Shared fixtures: paths, one torch thread, small simulated data and the real test files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# One BLAS/OpenMP thread for every test and every process a test starts: small matmuls are
# fastest on one thread, and a second one spin-waits beside a busy core. Set before any
# import of numpy or torch.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers import ROOT  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))  # the helpers package

from helpers.real_files import real_file  # noqa: E402
from interpretable_ae.simulate import simulate_counts  # noqa: E402


@pytest.fixture(scope="session")
def real() -> object:
    """``real(relpath)``: the path of a real test file (see helpers/real_files.py)."""
    return real_file


@pytest.fixture
def small_data() -> tuple[ad.AnnData, dict[str, list[str]]]:
    """161 simulated cells x 120 genes, 8 gene sets of 5-15 genes (3 planted); a fresh
    copy per test, so tests may modify it."""
    return simulate_counts(n_cells=161, n_genes=120, n_sets=8, set_size=(5, 15))


@pytest.fixture(scope="session")
def buettner_h5ad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Buettner 2015 mESC (log expression) as a user's .h5ad: stage in obs['stage']."""
    table = pd.read_csv(real_file("expression/buettner2015_mesc.csv.gz"), index_col=0)
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
