"""Gene sets: read GMT files, build the genes x terms annotation matrix I, name terms.

Both GMT forms are read by one reader, which keeps full names (no truncation):

- MSigDB: ``REACTOME_INTERFERON_SIGNALING<TAB>http://...<TAB>GENE<TAB>...``
- reactome.org: ``Interferon Signaling<TAB>R-HSA-913531<TAB>GENE<TAB>...`` (spaces, ``/``
  and ``,`` in names).

Our own reader rather than gseapy's: gseapy silently keeps the last of two sets with the
same name and skips short lines, where a user wants to hear about both. Fields are split
on tabs only. A malformed file (blank line, duplicate name, a set with
fewer than two genes, no tab-separated genes) raises :class:`GeneSetError` naming the file,
the line and the fix. Files are UTF-8 (a leading byte-order mark is dropped); another
encoding (or a NUL byte) is an error naming the line, never a silently renamed set or
replaced character.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

MSIGDB_PREFIXES = ("REACTOME_", "HALLMARK_")
log = logging.getLogger(__name__)


class GeneSetError(ValueError):
    """A gene-set file or collection that cannot be used as given."""


def looks_like_html(head: bytes) -> bool:
    """Whether the first bytes of a file are an HTML document (a failed download).

    Parameters
    ----------
    head
        The file's first bytes (512 are plenty).

    Returns
    -------
    bool
        True for a page starting with a doctype, ``<html>``, ``<head>`` or ``<body>``.

    Examples
    --------
    >>> looks_like_html(b"<!DOCTYPE html><html>..."), looks_like_html(b"SET\\tdesc\\tA\\tB")
    (True, False)
    """
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def decode_gmt(data: bytes, where: str | Path) -> str:
    """The text of GMT bytes: UTF-8, a leading byte-order mark dropped (Excel writes one).

    Parameters
    ----------
    data
        The file's bytes.
    where
        The file's name, for the error message.

    Returns
    -------
    str
        The decoded text.

    Raises
    ------
    GeneSetError
        Another encoding (Latin-1, UTF-16 with or without a byte-order mark), naming the
        line and the fix, instead of a renamed first set or silently replaced characters. A
        NUL byte is never valid in a GMT file; in the first two bytes it is UTF-16 without a
        byte-order mark (every other byte of ASCII text; big-endian if the first).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise GeneSetError(
            f"{where}: the file is UTF-16 encoded; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        lineno = data.count(b"\n", 0, nul) + 1
        where_nul = f"{where}:{lineno}: NUL byte, never valid in a GMT file"
        if nul > 1:  # a stray one in text
            raise GeneSetError(f"{where_nul}; remove it, e.g. tr -d '\\000' < in.gmt > out.gmt")
        form = "UTF-16BE" if nul == 0 else "UTF-16LE"
        raise GeneSetError(
            f"{where_nul} (UTF-16 without a byte-order mark?); save it as UTF-8, e.g. "
            f"iconv -f {form} -t UTF-8"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        lineno = data.count(b"\n", 0, err.start) + 1
        raise GeneSetError(
            f"{where}:{lineno}: byte 0x{data[err.start]:02x} is not UTF-8 (a Latin-1 or Windows "
            "file?); convert the file to UTF-8, e.g. iconv -f LATIN1 -t UTF-8"
        ) from None


def read_gmt(
    path: str | Path, min_set_size: int = 2, drop_small: bool = False
) -> dict[str, list[str]]:
    """Read a GMT file into ``{term: [genes]}``.

    Parameters
    ----------
    path
        A GMT file: one set a line, ``name<TAB>description<TAB>gene<TAB>gene...``.
    min_set_size
        A set with fewer genes is an error, or dropped with ``drop_small``.
    drop_small
        Drop (and count in the log) the sets with fewer than ``min_set_size`` genes,
        instead of stopping (reactome.org's file has one-gene pathways).

    Returns
    -------
    dict of str to list of str
        The sets in file order, full names, each set's genes de-duplicated in order.

    Raises
    ------
    GeneSetError
        A missing file, an HTML page, a blank line, fewer than three tab-separated
        fields, a set without a name, a duplicate name, a too-small set, a non-UTF-8
        file or no set at all: one line naming the file, the line and the fix.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sets.gmt"
    >>> _ = path.write_text("IFN\\thttp://x\\tIFIT1\\tISG15\\tIFIT1\\nTCR\\t-\\tCD3E\\tCD3D\\n")
    >>> read_gmt(path)
    {'IFN': ['IFIT1', 'ISG15'], 'TCR': ['CD3E', 'CD3D']}
    """
    path = Path(path)
    if not path.is_file():
        raise GeneSetError(f"{path}: gene-set file not found; check the path in the config")
    data = path.read_bytes()
    if looks_like_html(data[:512]):
        raise GeneSetError(
            f"{path}: is an HTML page, not a GMT file (a failed download?); delete it and "
            "download it again"
        )
    sets: dict[str, list[str]] = {}
    dropped = 0
    with io.StringIO(decode_gmt(data, path), newline=None) as fh:  # newlines as open() does
        for lineno, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                raise GeneSetError(
                    f"{path}:{lineno}: blank line; a GMT file has one gene set per line "
                    "(remove the blank line)"
                )
            fields = line.split("\t")
            if len(fields) < 3:
                raise GeneSetError(
                    f"{path}:{lineno}: expected 'name<TAB>description<TAB>gene...', found "
                    f"{len(fields)} tab-separated field(s); is the file tab-separated?"
                )
            name = fields[0].strip()
            genes = list(dict.fromkeys(g.strip() for g in fields[2:] if g.strip()))
            if not name:
                raise GeneSetError(f"{path}:{lineno}: the gene set has no name (first field)")
            if name in sets:
                raise GeneSetError(
                    f"{path}:{lineno}: duplicate gene set name {name!r}; names must be unique "
                    "(rename or merge the sets)"
                )
            if len(genes) < min_set_size:
                if drop_small:
                    dropped += 1
                    continue
                raise GeneSetError(
                    f"{path}:{lineno}: gene set {name!r} has {len(genes)} gene(s), fewer than "
                    f"{min_set_size}; remove it, or set drop_small_sets: true for this file"
                )
            sets[name] = genes
    if dropped:
        log.info("%s: dropped %d gene set(s) with fewer than %d genes", path, dropped, min_set_size)
    if not sets:
        raise GeneSetError(f"{path}: no gene sets found; is it an empty file?")
    return sets


def select_terms(
    gene_sets: Mapping[str, Sequence[str]],
    prefixes: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> dict[str, list[str]]:
    """The terms whose name starts with one of ``prefixes`` and matches no ``exclude``.

    Parameters
    ----------
    gene_sets
        ``{term: genes}``.
    prefixes
        Name prefixes to keep (empty: every term).
    exclude
        Regular expressions; a term matching any of them is dropped.

    Returns
    -------
    dict of str to list of str
        The kept sets, in their order.

    Examples
    --------
    >>> sets = {"HALLMARK_A": ["X"], "REACTOME_B": ["Y"], "KEGG_C": ["Z"]}
    >>> list(select_terms(sets, prefixes=["HALLMARK_", "REACTOME_"], exclude=["_B$"]))
    ['HALLMARK_A']
    """
    pats = [re.compile(p) for p in exclude]
    return {
        t: list(g)
        for t, g in gene_sets.items()
        if (not prefixes or t.startswith(tuple(prefixes))) and not any(p.search(t) for p in pats)
    }


def build_mask(
    gene_names: Sequence[str],
    gene_sets: Mapping[str, Sequence[str]],
    min_genes: int = 1,
    max_genes: int | None = None,
) -> tuple[sp.csr_matrix, list[str]]:
    """The annotation matrix I, genes x terms, for the data's genes.

    Parameters
    ----------
    gene_names
        The data's genes (``adata.var_names``), unique.
    gene_sets
        ``{term: genes}``; genes not in ``gene_names`` are ignored.
    min_genes
        Terms with fewer genes present are dropped.
    max_genes
        Terms with more genes present are dropped (``None``: no bound).

    Returns
    -------
    mask : scipy.sparse.csr_matrix
        Genes x kept terms, float32, 1 where the gene is in the set.
    terms : list of str
        The kept terms, in the order of ``gene_sets``.

    Raises
    ------
    GeneSetError
        Duplicate gene names, or no term keeps ``min_genes`` genes (another species or
        other symbols?).

    Examples
    --------
    >>> mask, terms = build_mask(["A", "B", "C"], {"S1": ["A", "B", "Q"], "S2": ["C"]}, 2)
    >>> terms, mask.toarray().ravel().tolist()
    (['S1'], [1.0, 1.0, 0.0])
    """
    genes = pd.Index([str(g) for g in gene_names])
    if not genes.is_unique:
        dup = genes[genes.duplicated()][:3].tolist()
        raise GeneSetError(f"gene names are not unique (e.g. {dup}); make them unique first")
    terms = list(gene_sets)
    sizes = np.fromiter((len(gene_sets[t]) for t in terms), dtype=np.int64, count=len(terms))
    flat = [g for t in terms for g in gene_sets[t]]
    term_idx = np.repeat(np.arange(len(terms)), sizes)
    gene_idx = genes.get_indexer(pd.Index(flat, dtype=object)) if flat else np.empty(0, int)
    hit = gene_idx >= 0
    mask = sp.csr_matrix(
        (np.ones(int(hit.sum()), dtype=np.float32), (gene_idx[hit], term_idx[hit])),
        shape=(len(genes), len(terms)),
    )
    mask.sum_duplicates()
    mask.data[:] = 1.0
    present = np.asarray(mask.getnnz(axis=0)).ravel()
    keep = present >= min_genes
    if max_genes is not None:
        keep &= present <= max_genes
    if not keep.any():
        raise GeneSetError(
            f"no gene set has at least {min_genes} of its genes among the {len(genes)} genes "
            f"of the data (largest overlap: {int(present.max(initial=0))}); check that the "
            "gene sets and the data use the same species and symbols, or lower min_genes"
        )
    cols = np.flatnonzero(keep)
    return mask[:, cols].tocsr(), [terms[i] for i in cols]


def display_name(term: str) -> str:
    """A term's name for figures: an MSigDB collection prefix dropped, underscores to spaces.

    For display only: data keep the full names.

    Parameters
    ----------
    term
        A term name.

    Returns
    -------
    str
        The name to show; reactome.org names are returned unchanged.

    Examples
    --------
    >>> display_name("REACTOME_INTERFERON_SIGNALING")
    'INTERFERON SIGNALING'
    >>> display_name("Interferon Signaling")
    'Interferon Signaling'
    """
    for prefix in MSIGDB_PREFIXES:
        if term.startswith(prefix):
            return term[len(prefix) :].replace("_", " ")
    return term


def merge_gene_sets(collections: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, list[str]]:
    """Merge named collections into one ``{term: genes}``, in order.

    Parameters
    ----------
    collections
        ``{collection name: {term: genes}}``.

    Returns
    -------
    dict of str to list of str
        Every term once; a term in two collections must have the same genes there (e.g.
        hallmark sets from two releases of the same file).

    Raises
    ------
    GeneSetError
        A term with different genes in two collections, naming both.

    Examples
    --------
    >>> merge_gene_sets({"h": {"A": ["X", "Y"]}, "c2": {"A": ["Y", "X"], "B": ["Z"]}})
    {'A': ['X', 'Y'], 'B': ['Z']}
    """
    merged: dict[str, list[str]] = {}
    origin: dict[str, str] = {}
    for name, sets in collections.items():
        for term, genes in sets.items():
            if term in merged and set(merged[term]) != set(genes):
                raise GeneSetError(
                    f"gene set {term!r} is in both {origin[term]!r} and {name!r} with different "
                    "genes; drop one of the collections or filter it with prefixes"
                )
            merged.setdefault(term, list(genes))
            origin.setdefault(term, name)
    return merged
