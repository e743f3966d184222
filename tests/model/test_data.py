"""Cells streamed batch by batch from dense, sparse and on-disk data, in the model's genes."""

from __future__ import annotations

import threading

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from interpretable_ae import data as data_module
from interpretable_ae.data import CellData, Statistics, _runs


def counts(n: int = 53, g: int = 17, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.poisson(0.4, size=(n, g)).astype(np.float32) * rng.uniform(0.5, 2, size=g)
    x[:, 3] = 0  # an all-zero gene
    return x.astype(np.float32)


def storages(x: np.ndarray, tmp_path) -> dict[str, object]:
    """The same matrix as dense, CSR, CSC, float64 dense and backed CSR / dense .h5ad."""
    csr = sp.csr_matrix(x)
    out = {"dense": x, "csr": csr, "csc": sp.csc_matrix(x), "float64": x.astype(np.float64)}
    for name, mat in (("backed_csr", csr), ("backed_dense", x)):
        path = tmp_path / f"{name}.h5ad"
        ad.AnnData(mat).write_h5ad(path)
        out[name] = ad.read_h5ad(path, backed="r").X
    return out


@pytest.fixture
def small_windows(monkeypatch):
    """Backed data read a few rows at a time, through many merged ranges."""
    monkeypatch.setattr(data_module, "WINDOW_BYTES", 200)
    monkeypatch.setattr(data_module, "MERGE_ENTRIES", 5)


@pytest.mark.parametrize(("windows", "prefetch"), [(False, False), (False, True), (True, True)])
def test_every_storage_streams_the_same_batches(tmp_path, request, windows, prefetch):
    if windows:
        request.getfixturevalue("small_windows")
    x = counts()
    rows = np.random.default_rng(1).permutation(x.shape[0])
    bounds = [(0, 10), (10, 20), (20, 40), (40, 53)]
    gene_index = np.arange(x.shape[1])
    for name, mat in storages(x, tmp_path).items():
        cells = CellData(mat, gene_index)
        assert cells.is_backed == name.startswith("backed")
        got = [b.clone() for b in cells.stream(rows, bounds, prefetch=prefetch)]
        for (a, b), batch in zip(bounds, got, strict=True):
            assert torch.equal(batch, torch.from_numpy(x[rows[a:b]])), name
        assert torch.equal(cells.rows(rows[:7]), torch.from_numpy(x[rows[:7]])), name


def test_genes_are_reordered_missing_ones_read_as_zero_and_means_subtracted(tmp_path):
    x = counts()
    # model genes: data columns 5, 2, (missing), 0, 16; the other data columns are unused
    gene_index = np.array([5, 2, -1, 0, 16])
    expected = np.zeros((x.shape[0], 5), dtype=np.float32)
    expected[:, [0, 1, 3, 4]] = x[:, [5, 2, 0, 16]]
    means = np.array([1.0, 2.0, 0.0, 3.0, 4.0], dtype=np.float32)
    for name, mat in storages(x, tmp_path).items():
        cells = CellData(mat, gene_index)
        chunks = [(a, b, c.clone()) for a, b, c in cells.chunks(size=20)]
        assert [(a, b) for a, b, _ in chunks] == [(0, 20), (20, 40), (40, 53)]
        dense = torch.cat([c for _, _, c in chunks])
        assert torch.equal(dense, torch.from_numpy(expected)), name
        centred = torch.cat([c.clone() for _, _, c in cells.with_means(means).chunks(size=20)])
        assert torch.equal(centred, torch.from_numpy(expected) - torch.from_numpy(means)), name
        stats = cells.statistics()
        np.testing.assert_allclose(stats.mean, expected.astype(np.float64).mean(0), rtol=1e-12)
        np.testing.assert_allclose(stats.rms, np.sqrt((expected.astype(np.float64) ** 2).mean(0)))


def test_the_statistics_never_densify_a_sparse_matrix(monkeypatch):
    x = sp.random(3000, 500, density=0.01, format="csr", dtype=np.float32, random_state=0)

    def refuse(*args, **kwargs):
        raise AssertionError("densified")

    monkeypatch.setattr(sp.csr_matrix, "toarray", refuse)
    monkeypatch.setattr(sp.csr_matrix, "todense", refuse)
    stats = CellData(x, np.arange(500)).statistics()
    np.testing.assert_allclose(stats.mean, np.asarray(x.mean(axis=0)).ravel(), rtol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "csr", "backed_csr", "backed_dense"])
def test_nan_and_inf_are_found_in_every_storage(tmp_path, kind):
    x = counts()
    x[7, 4] = np.nan  # a stored value
    x[30, 1] = np.inf
    x[30, 2] = -np.inf
    mat = storages(x, tmp_path)[kind]
    names = [f"cell{i}" for i in range(x.shape[0])]
    cells = CellData(mat, np.arange(x.shape[1]), cell_names=names, where="layers['counts']")
    with pytest.raises(
        ValueError, match=r"layers\['counts'\] has 3 NaN/Inf value.*in 2 cell.*'cell7'"
    ):
        cells.statistics()
    # a NaN in a column the model does not use is no concern of the model's
    assert CellData(mat, np.array([0, 3, 5])).statistics().mean.shape == (3,)


def test_centring_means_take_near_zero_means_as_zero():
    stats = Statistics(mean=np.array([1.0, 1e-9, 0.0, -0.5]), rms=np.array([2.0, 1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(
        stats.centring_means(), np.array([1.0, 0.0, 0.0, -0.5], dtype=np.float32)
    )
    assert not stats.looks_centred()
    assert Statistics(np.array([1e-8, 0.0]), np.array([1.0, 0.0])).looks_centred()


def test_read_ranges_merge_close_rows_and_split_long_ones():
    rows = np.array([0, 1, 2, 10, 11, 40])
    assert _runs(rows, None, gap=5) == [(0, 3), (3, 5), (5, 6)]
    assert _runs(rows, None, gap=100) == [(0, 6)]
    indptr = np.arange(0, 42 * 10, 10)  # 10 entries per row
    assert _runs(rows, indptr, gap=100) == [(0, 5), (5, 6)]
    assert _runs(np.arange(30), None, gap=1) == [(0, 30)]  # consecutive rows: one read
    long = _runs(np.arange(1000), None, gap=2)  # ranges stop at 64 x gap entries
    assert all(b - a <= 128 for a, b in long) and long[0][0] == 0 and long[-1][1] == 1000


def test_a_backed_csc_matrix_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "csc.h5ad"
    ad.AnnData(sp.csc_matrix(counts())).write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    with pytest.raises(ValueError, match=r"by columns \(CSC\).*write it as CSR"):
        CellData(backed.X, np.arange(backed.n_vars))


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device; on a machine with a GPU and a CUDA build of torch, run "
    "pytest tests/model/test_data.py -k cuda",
)
def test_on_cuda_batches_come_through_pinned_buffers(tmp_path, monkeypatch):
    pinned = []
    pin = torch.Tensor.pin_memory
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: pinned.append(t.shape) or pin(t))
    x = counts(n=500)
    rows = np.random.default_rng(2).permutation(500)
    bounds = [(a, min(a + 64, 500)) for a in range(0, 500, 64)]
    means = x.mean(axis=0)
    for name, mat in storages(x, tmp_path).items():
        cells = CellData(mat, np.arange(x.shape[1]), means=means)
        for (a, b), batch in zip(bounds, cells.stream(rows, bounds, "cuda"), strict=True):
            assert batch.is_cuda
            expected = torch.from_numpy(x[rows[a:b]] - means)
            assert torch.equal(batch.cpu(), expected), name
    assert pinned  # the host side of every copy is pinned memory


def test_an_error_while_prefetching_reaches_the_caller_and_stops_the_thread(monkeypatch):
    cells = CellData(sp.csr_matrix(counts()), np.arange(17))

    def broken(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(cells.stored, "gather", broken)
    before = threading.active_count()
    with pytest.raises(OSError, match="disk gone"):
        list(cells.stream(np.arange(53), [(0, 20), (20, 53)], prefetch=True))
    # a caller that stops early does not leave the thread behind either
    monkeypatch.undo()
    stream = cells.stream(np.arange(53), [(0, 10), (10, 20), (20, 53)], prefetch=True)
    next(stream)
    stream.close()
    assert threading.active_count() == before
