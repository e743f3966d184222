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
encoding is an error naming the line, never a silently renamed set or replaced character.
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
    """True when the first bytes of a file are an HTML document (a failed download)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def decode_gmt(data: bytes, where: str | Path) -> str:
    """The text of GMT bytes: UTF-8, a leading byte-order mark dropped (Excel writes one).

    Another encoding (Latin-1, UTF-16) raises :class:`GeneSetError` naming the line and the
    fix, instead of renaming the first set or replacing characters silently.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise GeneSetError(
            f"{where}: the file is UTF-16 encoded; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)"
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
    """Read a GMT file into ``{term: [genes]}`` (file order, genes de-duplicated).

    A set with fewer than ``min_set_size`` genes is an error, or, with ``drop_small``
    (reactome.org's file has one-gene pathways), dropped and counted in the log.
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
    """Keep the terms whose name starts with one of ``prefixes`` (all when empty) and
    matches none of the regular expressions in ``exclude``."""
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
    """Annotation matrix I (genes x terms, CSR float32) for ``gene_names``.

    Terms with fewer than ``min_genes`` (or more than ``max_genes``) genes present are
    dropped. Vectorised: one ``get_indexer`` over all (term, gene) pairs.
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
    """Human-readable term name: drop an MSigDB collection prefix, underscores to spaces.

    ``REACTOME_INTERFERON_SIGNALING`` -> ``INTERFERON SIGNALING``; reactome.org names are
    returned unchanged. For display only: data keep the full names.
    """
    for prefix in MSIGDB_PREFIXES:
        if term.startswith(prefix):
            return term[len(prefix) :].replace("_", " ")
    return term


def merge_gene_sets(collections: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, list[str]]:
    """Merge named collections into one ``{term: genes}`` (in order).

    A term in two collections must have the same genes (e.g. hallmark sets from two
    releases of the same file); otherwise it is an error naming both collections.
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
