"""Random masks: the mask's gene rows permuted, every term keeping its size and overlaps."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from iae_pipeline.analyses.random_masks import (
    RANDOM_MASK_KEY,
    mark_random_fit,
    null_seed,
    permute_rows,
    random_mask_data,
)
from iae_pipeline.analyses.term_groups import term_groups
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY


def mask(seed: int = 0, genes: int = 60, terms: int = 12) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((genes, terms)) < 0.2).astype(np.float32))


def prepared(seed: int = 0) -> ad.AnnData:
    m = mask(seed)
    adata = ad.AnnData(
        X=sp.random(30, m.shape[0], density=0.3, format="csr", random_state=seed, dtype=np.float32),
        obs=pd.DataFrame(
            {"condition": ["control", "stimulated"] * 15, "cell_type": "x"},
            index=[f"c{i}" for i in range(30)],
        ),  # fmt: skip
        var=pd.DataFrame(index=[f"g{i}" for i in range(m.shape[0])]),
    )
    adata.varm[MASK_KEY] = m
    adata.uns[TERMS_KEY] = np.asarray([f"T{i}" for i in range(m.shape[1])], dtype=object)
    return adata


def test_every_term_keeps_its_size_and_its_overlaps() -> None:
    original = mask()
    permuted, perm = permute_rows(original, seed=3)
    assert sorted(perm) == list(range(original.shape[0]))
    assert not np.array_equal(permuted.toarray(), original.toarray())  # the genes moved
    np.testing.assert_array_equal(permuted.toarray(), original.toarray()[perm])
    gram = (original.T @ original).toarray()  # sizes on the diagonal, overlaps off it
    np.testing.assert_array_equal((permuted.T @ permuted).toarray(), gram)


def test_the_groups_of_a_random_mask_are_the_real_mask_s_groups() -> None:
    original = mask(1, genes=40, terms=15)
    terms = [f"T{i}" for i in range(15)]
    real = term_groups(original, terms, threshold=0.2)
    random = term_groups(permute_rows(original, seed=5)[0], terms, threshold=0.2)
    pd.testing.assert_frame_equal(real, random)


def test_the_seed_decides_the_permutation() -> None:
    a, _ = permute_rows(mask(), seed=1)
    b, _ = permute_rows(mask(), seed=1)
    c, _ = permute_rows(mask(), seed=2)
    assert np.array_equal(a.toarray(), b.toarray())
    assert not np.array_equal(a.toarray(), c.toarray())


def test_random_mask_data_shares_the_expression_and_records_the_seed() -> None:
    data = prepared()
    before = data.varm[MASK_KEY].toarray().copy()
    out = random_mask_data(data, seed=7)
    assert out.X is data.X  # not copied
    assert list(out.uns[TERMS_KEY]) == list(data.uns[TERMS_KEY])
    assert out.uns[RANDOM_MASK_KEY]["seed"] == 7
    perm = out.uns[RANDOM_MASK_KEY]["permutation"]
    np.testing.assert_array_equal(out.varm[MASK_KEY].toarray(), before[perm])
    np.testing.assert_array_equal(data.varm[MASK_KEY].toarray(), before)  # input untouched
    assert RANDOM_MASK_KEY not in data.uns


def test_random_mask_data_refuses_data_without_a_mask() -> None:
    data = prepared()
    del data.varm[MASK_KEY]
    with pytest.raises(ValueError, match="geneset_mask"):
        random_mask_data(data, seed=0)


def test_seeds_and_the_run_record() -> None:
    assert [null_seed(10, k) for k in range(3)] == [10, 11, 12]
    with pytest.raises(ValueError):
        null_seed(0, -1)
    factors = ad.AnnData(np.zeros((2, 1)))
    factors.uns["run"] = {"model": "m", "setup": "m", "seed": 3}
    assert mark_random_fit(factors, 3).uns["run"] == {
        "model": "m", "setup": "m", "seed": 3, "random_mask_seed": 3,
    }  # fmt: skip
