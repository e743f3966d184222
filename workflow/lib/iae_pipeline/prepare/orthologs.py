"""Mouse data, human gene sets: translate the gene sets through an ortholog table.

The table is Ensembl BioMart's CSV export of human genes with their mouse homologs
(``human_symbol,mouse_symbol``, no header; the mouse field is empty for human genes
without a mouse ortholog), as ``Ensembl105_Human2Mouse_Genes.csv``. Each human gene of a
set is replaced by all its mouse orthologs, so one-to-many orthologs keep every mouse
copy and the expression data are never merged or renamed.

Without a table, :func:`translate_by_case` matches symbols case-insensitively (``Stat1``
-> ``STAT1``): a documented fallback only, since many mouse and human symbols differ.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from interpretable_ae.genesets import GeneSetError

log = logging.getLogger(__name__)

HUMAN, MOUSE = "human", "mouse"


def read_orthologs(path: str | Path) -> pd.DataFrame:
    """Read a BioMart human-mouse symbol table.

    Parameters
    ----------
    path
        A CSV with the human symbol, then the mouse symbol (more columns are ignored); a
        header line (``Gene name,...``) is skipped.

    Returns
    -------
    pandas.DataFrame
        Columns ``human`` and ``mouse``; rows without a mouse symbol dropped.

    Raises
    ------
    GeneSetError
        A file with fewer than two columns or no pair.
    """
    path = Path(path)
    if not path.is_file():
        raise GeneSetError(f"{path}: ortholog table not found; check orthologs in the config")
    try:
        table = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, comment=None)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise GeneSetError(f"{path}: not a CSV ortholog table ({err})") from None
    if table.shape[1] != 2:
        raise GeneSetError(
            f"{path}: expected 2 comma-separated columns (human symbol, mouse symbol), found "
            f"{table.shape[1]}; export 'Gene name' and 'Mouse gene name' from BioMart as CSV"
        )
    table.columns = [HUMAN, MOUSE]
    if table.iloc[0, 0].strip().lower() in ("gene name", "human gene name", "gene_name"):
        table = table.iloc[1:]
    table = table.apply(lambda col: col.str.strip())
    table = table[(table[HUMAN] != "") & (table[MOUSE] != "")].drop_duplicates()
    if table.empty:
        raise GeneSetError(f"{path}: no human/mouse symbol pair found; is it the right table?")
    return table.reset_index(drop=True)


def translate_gene_sets(
    gene_sets: Mapping[str, Sequence[str]],
    orthologs: pd.DataFrame,
    data_genes: Sequence[str] | None = None,
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Human gene sets to mouse gene sets through an ortholog table.

    Parameters
    ----------
    gene_sets
        ``{term: human symbols}``.
    orthologs
        From :func:`read_orthologs`.
    data_genes
        The data's genes, to count how many have a human ortholog (for the log).

    Returns
    -------
    gene_sets : dict of str to list of str
        The translated sets; sets left empty are dropped.
    counts : dict of str to int
        Human genes in the sets, how many have a mouse ortholog and, with ``data_genes``,
        how many data genes have a human one.
    """
    to_mouse = orthologs.groupby(HUMAN, sort=False)[MOUSE].agg(list).to_dict()
    out: dict[str, list[str]] = {}
    for term, genes in gene_sets.items():
        mouse = [m for g in genes for m in to_mouse.get(g, ())]
        if mouse:
            out[term] = list(dict.fromkeys(mouse))
    human = {g for genes in gene_sets.values() for g in genes}
    stats = {
        "set_genes": len(human),
        "set_genes_mapped": sum(g in to_mouse for g in human),
    }
    if data_genes is not None:
        stats["data_genes"] = len(data_genes)
        stats["data_genes_mapped"] = int(pd.Index(data_genes).isin(orthologs[MOUSE]).sum())
    log.info(
        "orthologs: %d of %d human gene-set genes have a mouse ortholog%s",
        stats["set_genes_mapped"],
        stats["set_genes"],
        ""
        if data_genes is None
        else f"; {stats['data_genes_mapped']} of {stats['data_genes']} data genes have a "
        "human ortholog",
    )
    return out, stats


def translate_by_case(
    gene_sets: Mapping[str, Sequence[str]], data_genes: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Match gene-set symbols to the data's genes ignoring case (no ortholog table), as the
    authors' ``add_annotations`` upper-cases both.

    Parameters
    ----------
    gene_sets
        ``{term: human symbols}``.
    data_genes
        The data's genes.

    Returns
    -------
    gene_sets : dict of str to list of str
        The sets in the data's spelling, reduced to the data's genes.
    counts : dict of str to int
        Gene-set genes and how many matched, for the log.
    """
    by_upper: dict[str, list[str]] = {}
    for g in data_genes:
        by_upper.setdefault(str(g).upper(), []).append(str(g))
    out = {}
    for term, genes in gene_sets.items():
        hits = [d for g in genes for d in by_upper.get(g.upper(), ())]
        if hits:
            out[term] = list(dict.fromkeys(hits))
    human = {g.upper() for genes in gene_sets.values() for g in genes}
    stats = {
        "set_genes": len(human),
        "set_genes_mapped": len(human & by_upper.keys()),
        "data_genes": len(data_genes),
        "data_genes_mapped": sum(len(by_upper[g]) for g in human & by_upper.keys()),
    }
    log.warning(
        "orthologs: no ortholog table, matching symbols by upper case (fallback); "
        "%d of %d data genes matched a gene-set symbol",
        stats["data_genes_mapped"],
        stats["data_genes"],
    )
    return out, stats
