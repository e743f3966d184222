"""Cells for the model, one batch at a time: the one way data enter it.

:class:`CellData` reads an AnnData's ``X`` or a layer, stored as a dense array, a scipy
sparse matrix or, in backed mode, an on-disk dataset (h5py, or anndata's sparse dataset),
in the model's gene order, and densifies only the rows asked for, into buffers it owns:
genes the data lack are 0, and the per-gene means of the model (centring) are subtracted
batch by batch. Nothing ever holds the whole data densely.

- :meth:`CellData.stream` yields the dense rows of a sequence of batches (training,
  evaluation, latents). Backed data are read in windows: the rows of the next batches
  (up to :data:`WINDOW_BYTES` of stored values), sorted and merged into long contiguous
  reads, so that a random batch order costs a few sequential passes over the file per
  epoch. Any storage gives the same batches for the same row order: dense, sparse and
  backed input train to bit-identical models.
- :meth:`CellData.statistics` streams once over the stored values (sparse: the non-zero
  entries; dense: row chunks): per-gene means and root mean squares, and the NaN/Inf
  check of every value.
- On CUDA, batches are densified into pinned host buffers and copied asynchronously
  (two buffers in turn, so that filling the next batch overlaps the copy).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from .conventions import centred_genes

log = logging.getLogger(__name__)

CHUNK_ROWS = 4096  # rows per chunk of the statistics pass
# rows per chunk of evaluation and latents: their dense centred rows and activations
# (8 MB a buffer at 2,000 genes; 4,096 rows made a 200,000-cell fit's peak 200 MB higher)
EVAL_ROWS = 1024
WINDOW_BYTES = 256 * 2**20  # stored bytes of backed data read into memory at a time
MERGE_ENTRIES = 2**16  # stored entries between two needed rows of backed data read through


@dataclass(frozen=True)
class Statistics:
    """Per model gene: ``mean`` and ``rms`` (root mean square) over the cells, float64;
    genes the data lack are 0."""

    mean: np.ndarray
    rms: np.ndarray

    def centring_means(self) -> np.ndarray:
        """The means to subtract (float32): the means of genes that count as centred
        already (:func:`~interpretable_ae.conventions.centred_genes`) are taken as 0, so
        that centring centred data changes nothing."""
        return np.where(centred_genes(self.mean, self.rms), 0.0, self.mean).astype(np.float32)

    def looks_centred(self) -> bool:
        """Whether every gene's mean is within tolerance of 0."""
        return bool(centred_genes(self.mean, self.rms).all())


# ---------------------------------------------------------------------- stored matrices
class _Dense:
    """An in-memory dense matrix (any real dtype), rows gathered into float32 buffers
    (numpy only: the gather may run in a filler thread beside torch's threads)."""

    def __init__(self, mat: np.ndarray, genes: _Genes) -> None:
        self.mat = mat
        self.genes = genes

    def gather(self, rows: np.ndarray, out: torch.Tensor) -> None:
        o = out.numpy()
        if self.genes.identity and self.mat.dtype == np.float32:
            np.take(self.mat, rows, axis=0, out=o)
            return
        sub = np.take(self.mat, rows, axis=0)
        if self.genes.identity:
            o[...] = sub
        else:
            o[:, self.genes.missing] = 0.0
            o[:, self.genes.present] = sub[:, self.genes.source]

    def chunk_values(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows ``a:b`` of the model genes the data have (dense), and None."""
        sub = np.asarray(self.mat[a:b])
        return (sub if self.genes.identity else sub[:, self.genes.source]), None


class _CSR:
    """An in-memory CSR matrix; rows gathered into float32 buffers (scipy's row indexing
    and densifying when the data's genes are the model's, else a numpy scatter)."""

    def __init__(self, matrix: sp.csr_matrix | sp.csr_array, genes: _Genes) -> None:
        self.m = matrix
        self.data, self.indices = matrix.data, matrix.indices
        self.indptr = matrix.indptr.astype(np.int64, copy=False)
        self.genes = genes

    @classmethod
    def from_arrays(
        cls, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, genes: _Genes
    ) -> _CSR:
        shape = (len(indptr) - 1, len(genes.column_of))
        return cls(sp.csr_matrix((data, indices, indptr), shape=shape, copy=False), genes)

    def _positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the stored entries of ``rows`` (in order) and their row number
        within ``rows``."""
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        total = int(lens.sum())
        offsets = np.cumsum(lens) - lens
        pos = np.repeat(starts - offsets, lens) + np.arange(total, dtype=np.int64)
        return pos, np.repeat(np.arange(len(rows), dtype=np.int64), lens)

    def gather(self, rows: np.ndarray, out: torch.Tensor) -> None:
        if self.genes.identity:
            sub = self.m[rows]
            if sub.dtype == np.float32:
                sub.toarray(out=out.numpy())  # zeroes the buffer first
            else:
                out.numpy()[...] = sub.toarray()
            return
        pos, local = self._positions(rows)
        n_genes = out.shape[1]
        cols = self.genes.column_of[self.indices[pos]]
        keep = cols >= 0
        vals, flat = self.data[pos][keep], local[keep] * n_genes + cols[keep]
        o = out.numpy().reshape(-1)
        o[...] = 0.0
        o[flat] = vals

    def chunk_values(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Stored values of rows ``a:b`` and their model gene (-1: not a model gene)."""
        lo, hi = int(self.indptr[a]), int(self.indptr[b])
        cols = np.asarray(self.indices[lo:hi], dtype=np.int64)
        if not self.genes.identity:
            cols = self.genes.column_of[cols]
        return np.asarray(self.data[lo:hi]), cols

    def rows_of_entries(self, a: int, positions: np.ndarray) -> np.ndarray:
        """Row numbers of stored entries given by their position within the chunk from row ``a``."""
        return np.searchsorted(self.indptr, positions + self.indptr[a], side="right") - 1


@dataclass(frozen=True)
class _Genes:
    """How the data's columns map to the model's genes."""

    identity: bool  # the data's genes are the model's, in its order
    source: np.ndarray  # for each present model gene, its column in the data
    present: np.ndarray  # model genes the data have
    missing: np.ndarray  # model genes the data lack
    column_of: np.ndarray  # for each data column, its model gene (-1: not used)

    @classmethod
    def from_index(cls, index: np.ndarray, n_columns: int) -> _Genes:
        index = np.asarray(index, dtype=np.int64)
        identity = len(index) == n_columns and bool((index == np.arange(n_columns)).all())
        present = np.flatnonzero(index >= 0)
        column_of = np.full(n_columns, -1, dtype=np.int64)
        column_of[index[present]] = present
        return cls(identity, index[present], present, np.flatnonzero(index < 0), column_of)


class _Backed:
    """An on-disk matrix (CSR: its ``data``/``indices``/``indptr`` datasets; dense: the
    dataset), read by sorted rows into in-memory :class:`_CSR` / :class:`_Dense` windows."""

    def __init__(self, mat: Any, genes: _Genes, n_obs: int) -> None:
        self.genes = genes
        self.sparse = _is_backed_sparse(mat)
        if self.sparse:
            group = mat.group
            self.data, self.indices = group["data"], group["indices"]
            self.indptr = np.asarray(group["indptr"][...], dtype=np.int64)
            n_entries = max(int(self.indptr[-1]), 1)
            self.row_bytes = (self.data.dtype.itemsize + self.indices.dtype.itemsize) * (
                n_entries / max(n_obs, 1)
            )
        else:
            self.mat = mat
            self.row_bytes = mat.dtype.itemsize * mat.shape[1]

    def window_rows(self) -> int:
        """Rows per window: :data:`WINDOW_BYTES` of stored values."""
        return max(int(WINDOW_BYTES / max(self.row_bytes, 1.0)), 1)

    def read(self, rows: np.ndarray) -> _CSR | _Dense:
        """The sorted, unique ``rows`` as an in-memory matrix (its row i = ``rows[i]``)."""
        if not self.sparse:
            gap = max(MERGE_ENTRIES // max(self.mat.shape[1], 1), 1)
            parts = []
            for i0, i1 in _runs(rows, None, gap):
                r0, r1 = int(rows[i0]), int(rows[i1 - 1]) + 1
                parts.append(np.asarray(self.mat[r0:r1])[rows[i0:i1] - r0])
            if not parts:
                return _Dense(np.zeros((0, self.mat.shape[1]), dtype=self.mat.dtype), self.genes)
            return _Dense(np.concatenate(parts), self.genes)
        lens = self.indptr[rows + 1] - self.indptr[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        data = np.empty(int(indptr[-1]), dtype=self.data.dtype)
        indices = np.empty(int(indptr[-1]), dtype=self.indices.dtype)
        for i0, i1 in _runs(rows, self.indptr, MERGE_ENTRIES):
            r0, r1 = int(rows[i0]), int(rows[i1 - 1]) + 1
            lo, hi = int(self.indptr[r0]), int(self.indptr[r1])
            d, ix = self.data[lo:hi], self.indices[lo:hi]
            if i1 - i0 == r1 - r0:  # every row of the range is wanted
                data[indptr[i0] : indptr[i1]], indices[indptr[i0] : indptr[i1]] = d, ix
                continue
            part = _CSR.from_arrays(d, ix, self.indptr[r0 : r1 + 1] - lo, self.genes)
            pos, _ = part._positions(rows[i0:i1] - r0)
            data[indptr[i0] : indptr[i1]], indices[indptr[i0] : indptr[i1]] = d[pos], ix[pos]
        return _CSR.from_arrays(data, indices, indptr, self.genes)

    def chunk(self, a: int, b: int) -> _CSR | _Dense:
        """Rows ``a:b`` (contiguous) in memory."""
        if not self.sparse:
            return _Dense(np.asarray(self.mat[a:b]), self.genes)
        lo, hi = int(self.indptr[a]), int(self.indptr[b])
        return _CSR.from_arrays(
            self.data[lo:hi], self.indices[lo:hi], self.indptr[a : b + 1] - lo, self.genes
        )


def _runs(rows: np.ndarray, offsets: np.ndarray | None, gap: int) -> list[tuple[int, int]]:
    """Index ranges ``[i0, i1)`` of the sorted, unique ``rows`` to read in one go each:
    neighbours are merged while fewer than ``gap`` stored entries lie between them
    (``offsets``: the CSR indptr; None: one entry per row), up to ``64 * gap`` entries
    per range."""
    if len(rows) == 0:
        return []
    off = rows if offsets is None else offsets[rows]
    end = rows + 1 if offsets is None else offsets[rows + 1]
    breaks = np.flatnonzero(off[1:] - end[:-1] >= gap) + 1
    cap = 64 * gap
    out = []
    for i0, i1 in zip(np.r_[0, breaks], np.r_[breaks, len(rows)], strict=True):
        span = (off[i0:i1] - off[i0]) // cap  # split long ranges every ~cap entries
        cuts = np.flatnonzero(np.diff(span)) + 1 + i0
        out += list(zip(np.r_[i0, cuts].tolist(), np.r_[cuts, i1].tolist(), strict=True))
    return out


def _is_backed_sparse(mat: Any) -> bool:
    try:
        from anndata.abc import CSCDataset, CSRDataset
    except ImportError:  # pragma: no cover - anndata < 0.11
        return hasattr(mat, "group") and getattr(mat, "format", "") == "csr"
    if isinstance(mat, CSCDataset):
        raise ValueError(
            "the backed AnnData stores its matrix by columns (CSC), which cannot be read by "
            "cells; write it as CSR (adata.X = adata.X.tocsr()) or load it into memory"
        )
    return isinstance(mat, CSRDataset)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


Fill = Callable[[Any, np.ndarray, torch.Tensor], torch.Tensor]
Filled = Iterator[tuple[int, torch.Tensor, Callable[[], None]]]


def _in_turn(
    jobs: Iterator[tuple[Any, np.ndarray]], host: list[torch.Tensor], fill: Fill
) -> Filled:
    """``(buffer index, filled rows, release)`` per job, filled here, buffers in turn."""
    for i, (stored, rows) in enumerate(jobs):
        k = i % len(host)
        yield k, fill(stored, rows, host[k]), lambda: None


def _prefetched(
    jobs: Iterator[tuple[Any, np.ndarray]], host: list[torch.Tensor], fill: Fill
) -> Filled:
    """As :func:`_in_turn`, filled by a background thread up to ``len(host) - 1`` jobs
    ahead; a buffer is refilled only after the caller released it. Errors of the thread
    are raised here."""
    free: queue.Queue[int] = queue.Queue()
    ready: queue.Queue[tuple[int, torch.Tensor] | BaseException | None] = queue.Queue()
    stop = threading.Event()
    for k in range(len(host)):
        free.put(k)

    def work() -> None:
        try:
            for stored, rows in jobs:
                k = free.get()
                if stop.is_set():
                    return
                ready.put((k, fill(stored, rows, host[k])))
            ready.put(None)
        except BaseException as err:  # handed to the caller
            ready.put(err)

    thread = threading.Thread(target=work, name="interpretable_ae-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            k, batch = item
            yield k, batch, lambda k=k: free.put(k)
    finally:
        stop.set()
        free.put(-1)  # wake the thread if it waits for a buffer
        thread.join()


# ---------------------------------------------------------------------- the data
class CellData:
    """Cells x model genes of one matrix, densified batch by batch.

    ``matrix`` is what an AnnData holds in ``X`` or a layer (cells x data genes);
    ``gene_index[j]`` is the data column of model gene ``j`` (-1: the data lack it, read
    as 0). ``means`` (model genes, or None) are subtracted from every row produced.
    ``cell_names`` name cells in error messages; ``where`` names the matrix.
    """

    def __init__(
        self,
        matrix: Any,
        gene_index: np.ndarray,
        *,
        means: np.ndarray | None = None,
        cell_names: Sequence[str] | None = None,
        where: str = "X",
    ) -> None:
        n_obs, n_cols = matrix.shape
        self.n_obs, self.n_vars = int(n_obs), len(gene_index)
        self.where = where
        self.cell_names = cell_names
        genes = _Genes.from_index(gene_index, n_cols)
        self.backed: _Backed | None = None
        if isinstance(matrix, np.ndarray):
            self.stored: _CSR | _Dense = _Dense(matrix, genes)
        elif sp.issparse(matrix):
            if matrix.format != "csr":
                log.info("%s is %s sparse: converting it to CSR once", where, matrix.format)
                matrix = matrix.tocsr()
            if not matrix.has_canonical_format:
                log.info("%s has unsorted or duplicate entries: using a canonical copy", where)
                matrix = matrix.copy()
                matrix.sum_duplicates()
            self.stored = _CSR(matrix, genes)
        else:
            self.backed = _Backed(matrix, genes, self.n_obs)
        self.genes = genes
        self.means = None if means is None else torch.as_tensor(means, dtype=torch.float32)

    @property
    def is_backed(self) -> bool:
        return self.backed is not None

    def with_means(self, means: np.ndarray | None) -> CellData:
        """This data with other centring means (the stored matrix is shared).

        Parameters
        ----------
        means
            One mean per model gene, subtracted from every cell; ``None``: not centred.

        Returns
        -------
        CellData
        """
        other = object.__new__(CellData)
        other.__dict__ |= self.__dict__
        other.means = None if means is None else torch.as_tensor(means, dtype=torch.float32)
        return other

    # ------------------------------------------------------------------ statistics
    def statistics(self) -> Statistics:
        """Per-gene mean and root mean square over all cells, in one pass over the
        stored values; raises if any value is NaN or infinite (naming the first cell)."""
        total = np.zeros(self.n_vars)
        squares = np.zeros(self.n_vars)
        n_bad, bad_rows, first_bad = 0, 0, -1
        for a in range(0, self.n_obs, CHUNK_ROWS):
            b = min(a + CHUNK_ROWS, self.n_obs)
            stored = self.backed.chunk(a, b) if self.backed else self.stored
            lo = 0 if self.backed else a
            values, cols = stored.chunk_values(lo, lo + b - a)
            if cols is None:  # dense rows
                finite = np.isfinite(values)
                if not finite.all():
                    rows = np.flatnonzero(~finite.all(axis=1))
                    n_bad += int((~finite).sum())
                    bad_rows += len(rows)
                    first_bad = a + int(rows[0]) if first_bad < 0 else first_bad
                    continue
                present = self.genes.present
                total[present] += values.sum(axis=0, dtype=np.float64)
                squares[present] += np.einsum("ij,ij->j", values, values, dtype=np.float64)
            else:
                keep = cols >= 0
                finite = np.isfinite(values)
                if not finite[keep].all():
                    bad = np.flatnonzero(~finite & keep)
                    rows = np.unique(stored.rows_of_entries(lo, bad))
                    n_bad += len(bad)
                    bad_rows += len(rows)
                    first_bad = a + int(rows[0]) - lo if first_bad < 0 else first_bad
                    continue
                v = values[keep].astype(np.float64)
                total += np.bincount(cols[keep], weights=v, minlength=self.n_vars)
                squares += np.bincount(cols[keep], weights=v * v, minlength=self.n_vars)
        if n_bad:
            name = self.cell_names[first_bad] if self.cell_names is not None else first_bad
            raise ValueError(
                f"{self.where} has {n_bad} NaN/Inf value(s) in {bad_rows} cell(s) (first: "
                f"'{name}'); remove those cells or impute before training"
            )
        n = max(self.n_obs, 1)
        return Statistics(total / n, np.sqrt(squares / n))

    # ------------------------------------------------------------------ rows
    def _fill(self, stored: _CSR | _Dense, rows: np.ndarray, out: torch.Tensor) -> torch.Tensor:
        """Dense raw rows (no centring) into ``out[:len(rows)]``, a CPU float32 tensor."""
        out = out[: len(rows)]
        stored.gather(rows, out)
        return out

    def _windows(
        self, rows: np.ndarray, bounds: Sequence[tuple[int, int]]
    ) -> Iterator[tuple[_CSR | _Dense, np.ndarray, list[tuple[int, int]]]]:
        """``(stored rows, their positions for rows[a0:b_last], bounds relative to a0)``
        per window of consecutive batches."""
        if self.backed is None:
            yield self.stored, rows, list(bounds)
            return
        limit = self.backed.window_rows()
        group: list[tuple[int, int]] = []
        for a, b in bounds:
            if group and b - group[0][0] > limit:
                yield self._read_window(rows, group)
                group = []
            group.append((a, b))
        if group:
            yield self._read_window(rows, group)

    def _read_window(
        self, rows: np.ndarray, group: list[tuple[int, int]]
    ) -> tuple[_CSR | _Dense, np.ndarray, list[tuple[int, int]]]:
        a0, b1 = group[0][0], group[-1][1]
        wanted = rows[a0:b1]
        unique = np.unique(wanted)
        stored = self.backed.read(unique)
        local = np.searchsorted(unique, wanted)
        return stored, local, [(a - a0, b - a0) for a, b in group]

    def _jobs(
        self, rows: np.ndarray, bounds: Sequence[tuple[int, int]]
    ) -> Iterator[tuple[_CSR | _Dense, np.ndarray]]:
        """``(stored rows, positions)`` of each batch in turn (backed windows read lazily)."""
        for stored, local, sub in self._windows(rows, bounds):
            for a, b in sub:
                yield stored, local[a:b]

    def stream(
        self,
        rows: np.ndarray | torch.Tensor,
        bounds: Sequence[tuple[int, int]],
        device: torch.device | str = "cpu",
        prefetch: bool | None = None,
    ) -> Iterator[torch.Tensor]:
        """Dense, centred cells, batch by batch, on a device.

        With ``prefetch`` a background thread densifies (and reads) the next batches while the
        caller computes on this one; the batches are the same either way. By default it does so
        when torch leaves a core free (fewer intra-op threads than cores) or on CUDA: the filler
        then never competes with torch's threads for a core.

        Parameters
        ----------
        rows
            The cells, in the order they are wanted.
        bounds
            ``(a, b)`` slices of ``rows``, one per batch.
        device
            Where the batches go.
        prefetch
            Densify ahead in a background thread (default: see above).

        Yields
        ------
        torch.Tensor
            ``rows[a:b]``, cells x model genes; valid until the next one is requested.
        """
        rows = rows.numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)
        rows = rows.astype(np.int64, copy=False)
        device = torch.device(device)
        if prefetch is None:
            prefetch = device.type == "cuda" or torch.get_num_threads() < _cores()
        width = max((b - a for a, b in bounds), default=0)
        n_host = 3 if prefetch else (2 if device.type == "cuda" else 1)
        host = [torch.empty((width, self.n_vars)) for _ in range(n_host)]
        dev: list[torch.Tensor] = []
        if device.type == "cuda":  # pinned host buffers, copied asynchronously
            host = [h.pin_memory() for h in host]
            dev = [torch.empty((width, self.n_vars), device=device) for _ in range(2)]
        # centred where the rows are densified (in the filler thread) on the CPU, on the
        # device after the copy on CUDA: the same float32 subtraction either way
        means = None if self.means is None else self.means.to(device)
        host_means = None if means is None or dev else means.numpy()

        def fill(stored: _CSR | _Dense, rows: np.ndarray, out: torch.Tensor) -> torch.Tensor:
            out = self._fill(stored, rows, out)
            if host_means is not None:
                np.subtract(out.numpy(), host_means, out=out.numpy())
            return out

        jobs = self._jobs(rows, bounds)
        filled = _prefetched(jobs, host, fill) if prefetch else _in_turn(jobs, host, fill)
        events: list[Any] = [None] * len(host)
        turn = 0
        try:
            for k, batch, release in filled:
                if dev:
                    out = dev[turn][: batch.shape[0]].copy_(batch, non_blocking=True)
                    turn = 1 - turn
                    events[k] = torch.cuda.Event()
                    events[k].record()
                    batch = out
                    if means is not None:
                        batch.sub_(means)
                yield batch
                if events[k] is not None:  # the host buffer is free once its copy is done
                    events[k].synchronize()
                release()
        finally:
            filled.close()

    def rows(
        self, rows: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Dense, centred cells as a new tensor.

        Parameters
        ----------
        rows
            The cells.
        device
            Where the tensor goes.

        Returns
        -------
        torch.Tensor
            Cells x model genes.
        """
        rows = rows.numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)
        out = torch.empty((len(rows), self.n_vars))
        for stored, local, sub in self._windows(rows.astype(np.int64), [(0, len(rows))]):
            self._fill(stored, local, out)
        out = out.to(device)
        if self.means is not None:
            out.sub_(self.means.to(device))
        return out

    def chunks(
        self,
        rows: np.ndarray | torch.Tensor | None = None,
        size: int = EVAL_ROWS,
        device: torch.device | str = "cpu",
    ) -> Iterator[tuple[int, int, torch.Tensor]]:
        """All cells (or ``rows``) in order, in chunks of ``size``.

        Parameters
        ----------
        rows
            The cells (default all).
        size
            Cells per chunk.
        device
            Where the chunks go.

        Yields
        ------
        tuple of (int, int, torch.Tensor)
            ``(a, b, dense centred rows[a:b])``.
        """
        rows = np.arange(self.n_obs) if rows is None else rows
        n = len(rows)
        bounds = [(a, min(a + size, n)) for a in range(0, n, size)]
        for (a, b), batch in zip(bounds, self.stream(rows, bounds, device), strict=True):
            yield a, b, batch
