"""Human gene sets in mouse symbols: the Ensembl ortholog table, and the upper-case fallback."""

from __future__ import annotations

import logging

from iae_pipeline.prepare.orthologs import read_orthologs, translate_by_case, translate_gene_sets


def test_ortholog_table_real(real):
    table = read_orthologs(real("genesets/Ensembl105_Human2Mouse_Genes.csv"))
    assert list(table.columns) == ["human", "mouse"] and len(table) > 20_000
    sets, stats = translate_gene_sets({"T": ["STAT1", "IRF1", "NOT_A_GENE"]}, table)
    assert {"Stat1", "Irf1"} <= set(sets["T"]) and stats["set_genes_mapped"] == 2


def test_upper_case_fallback_matches_mouse_symbols_and_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        sets, stats = translate_by_case({"T": ["STAT1", "IRF1", "NOPE"]}, ["Stat1", "Irf1", "Actb"])
    assert sets == {"T": ["Stat1", "Irf1"]}
    assert stats["set_genes"] == 3 and stats["set_genes_mapped"] == 2
    assert "fallback" in caplog.text
