"""Gene sets: both GMT forms on the real files, malformed files, the mask, display names."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from interpretable_ae.genesets import (
    GeneSetError,
    build_mask,
    display_name,
    looks_like_html,
    merge_gene_sets,
    read_gmt,
    select_terms,
)


def test_msigdb_reactome_v4_is_the_papers_file_with_full_names(real):
    sets = read_gmt(real("genesets/c2.cp.reactome.v4.0.symbols.gmt"))
    assert len(sets) == 674
    assert all(t.startswith("REACTOME_") for t in sets)
    long_names = [t for t in sets if len(t) > 30]
    assert long_names, "the reference implementation truncates to 30 characters; we must not"
    assert "REACTOME_INTERFERON_SIGNALING" in sets
    assert all(len(g) == len(set(g)) >= 2 for g in sets.values())


def test_msigdb_hallmark_and_reactome_751(real):
    hallmark = read_gmt(real("genesets/h.all.v7.5.1.symbols.gmt"))
    reactome = read_gmt(real("genesets/c2.cp.reactome.v7.5.1.symbols.gmt"))
    assert len(hallmark) == 50 and len(reactome) == 1615
    assert "HALLMARK_INTERFERON_GAMMA_RESPONSE" in hallmark
    assert {"STAT1", "IRF1"} <= set(hallmark["HALLMARK_INTERFERON_GAMMA_RESPONSE"])


def test_reactome_org_form_names_with_spaces_and_one_gene_pathways(real):
    path = real("genesets/ReactomePathways_2024-09-18.gmt")
    with pytest.raises(GeneSetError, match="fewer than 2; remove it, or set drop_small_sets"):
        read_gmt(path)
    sets = read_gmt(path, drop_small=True)
    n_lines = sum(1 for _ in path.open())
    assert 2000 < len(sets) < n_lines == 2694
    assert "2-LTR circle formation" in sets
    assert {"gag", "vif", "XRCC4"} <= set(sets["2-LTR circle formation"])
    assert any("/" in t for t in sets) and any("," in t for t in sets)
    assert all(len(g) >= 2 for g in sets.values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A\tu\tG1\tG2\n\nB\tu\tG3\tG4\n", r"bad\.gmt:2: blank line.*\(remove the blank line\)$"),
        (
            "A\tu\tG1\tG2\nA\tu\tG3\tG4\n",
            r"bad\.gmt:2: duplicate gene set name 'A'.*\(rename or merge the sets\)$",
        ),
        ("A\tu\tG1\tG2\nB\tu\tG3\n", r"bad\.gmt:2: gene set 'B' has 1 gene"),
        ("A u G1 G2\n", r"bad\.gmt:1: expected 'name<TAB>description<TAB>gene"),
        ("A\tu\tG1\tG2\n \tu\tG3\tG4\n", r"bad\.gmt:2: the gene set has no name \(first field\)$"),
        (
            "<!DOCTYPE html><html><body>404</body></html>\n",
            r"bad\.gmt: is an HTML page.*delete it and download it again$",
        ),
        ("", r"bad\.gmt: no gene sets found"),
    ],
)
def test_malformed_gmt_gives_one_line_error(tmp_path, text, message):
    path = tmp_path / "bad.gmt"
    path.write_text(text)
    with pytest.raises(GeneSetError, match=message) as info:
        read_gmt(path)
    assert "\n" not in str(info.value)


def test_a_byte_order_mark_is_dropped_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "bom.gmt"
    path.write_bytes(b"\xef\xbb\xbfHALLMARK_A\tu\tG1\tG2\r\nHALLMARK_B\tu\tG3\tG4\r\n")
    assert list(read_gmt(path)) == ["HALLMARK_A", "HALLMARK_B"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "A\tu\tG1\tG2\nB\tu\tCAF\xc9\tG4\n".encode("latin-1"),
            r"x\.gmt:2: byte 0xc9 is not UTF-8",
        ),
        (
            "A\tu\tG1\tG2\nB\tu\tG3\tG4\nC\tu\tCAF\xc9\tG4\nD\tu\tG5\tG6\nE\tu\tG7\tG8\n".encode(
                "latin-1"
            ),
            r"x\.gmt:3: byte 0xc9 is not UTF-8.*iconv -f LATIN1 -t UTF-8$",
        ),
        ("\nA\tu\tCAF\xc9\tG2\n".encode("latin-1"), r"x\.gmt:2: byte 0xc9"),
        ("A\tu\tG1\tG2\n".encode("utf-16"), r"x\.gmt: the file is UTF-16 encoded"),
        (b"\xfe\xff" + "A\tu\tG1\tG2\n".encode("utf-16-be"), r"x\.gmt: the file is UTF-16"),
    ],
    ids=[
        "latin-1",
        "latin-1 line 3 of 5",
        "after a blank first line",
        "utf-16",
        "utf-16-be BOM",
    ],
)
def test_other_encodings_are_an_error_not_replacement_characters(tmp_path, data, message):
    path = tmp_path / "x.gmt"
    path.write_bytes(data)
    with pytest.raises(GeneSetError, match=message) as info:
        read_gmt(path)
    text = str(info.value)
    assert "\n" not in text and ("save it as UTF-8" in text or "convert the file to UTF-8" in text)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "A\tu\tG1\tG2\nB\tu\tG3\tG4\n".encode("utf-16-be"),
            r":1: NUL byte, never valid in a GMT file \(UTF-16 without a byte-order mark\?\); "
            r"save it as UTF-8, e.g\. iconv -f UTF-16BE -t UTF-8$",
        ),
        ("A\tu\tG1\tG2\n".encode("utf-16-le"), r":1: NUL byte.*iconv -f UTF-16LE -t UTF-8$"),
        (
            b"A\tu\tG1\tG2\nB\tu\tG3\tG4\nC\tu\tG5\x00\tG6\n",
            r":3: NUL byte, never valid in a GMT file; remove it, e.g\. tr -d",
        ),
    ],
    ids=["utf-16-be without BOM", "utf-16-le without BOM", "a NUL on line 3 of UTF-8"],
)
def test_utf16_without_a_byte_order_mark_is_refused_not_read_as_nul_characters(
    tmp_path, data, message
):
    """Big-endian UTF-16 of ASCII text is valid UTF-8 with a NUL before every character:
    without the check it was read as sets named '\\x00A' holding genes '\\x00G\\x001'."""
    path = tmp_path / "x.gmt"
    path.write_bytes(data)
    with pytest.raises(GeneSetError, match="^" + re.escape(str(path)) + message) as info:
        read_gmt(path)
    assert "\n" not in str(info.value)


def test_missing_gmt(tmp_path):
    with pytest.raises(GeneSetError, match="not found"):
        read_gmt(tmp_path / "nope.gmt")


def test_build_mask_matches_a_loop_and_filters_by_size():
    rng = np.random.default_rng(1)
    genes = [f"G{i}" for i in range(60)]
    sets = {
        f"T{k}": [*rng.choice(genes, size=int(rng.integers(2, 25)), replace=False), "ABSENT"]
        for k in range(30)
    }
    mask, terms = build_mask(genes, sets, min_genes=5, max_genes=15)
    dense = mask.toarray()
    expected_terms = [t for t, g in sets.items() if 5 <= len(set(g) & set(genes)) <= 15]
    assert terms == expected_terms
    for j, t in enumerate(terms):
        assert set(np.asarray(genes)[dense[:, j] == 1]) == set(sets[t]) - {"ABSENT"}
    assert mask.dtype == np.float32 and set(np.unique(dense)) <= {0.0, 1.0}


def test_build_mask_errors():
    with pytest.raises(GeneSetError, match="gene names are not unique"):
        build_mask(["A", "A", "B"], {"T": ["A", "B"]})
    with pytest.raises(GeneSetError, match=r"largest overlap: 1\); check .* same species"):
        build_mask(["Stat1", "Irf1", "STAT2"], {"T": ["STAT1", "IRF1", "STAT2"]}, min_genes=2)


def test_build_mask_at_20k_genes_and_3k_terms_has_each_set_in_its_column():
    """The full-genome size of benchmarks/bench_mask.py (which times it): every column holds
    exactly its set's genes, terms in the order given, below min_genes dropped."""
    rng = np.random.default_rng(0)
    genes = np.array([f"GENE{i}" for i in range(20_000)])
    rows = {
        f"TERM_{k}": rng.choice(20_000, size=int(rng.integers(8, 400)), replace=False)
        for k in range(3_000)
    }
    sets = {t: [*genes[r].tolist(), "NOT_MEASURED"] for t, r in rows.items()}
    mask, terms = build_mask(genes, sets, min_genes=10)
    assert terms == [t for t, r in rows.items() if len(r) >= 10] and len(terms) < 3_000
    assert mask.shape == (20_000, len(terms)) and mask.dtype == np.float32
    assert mask.nnz == sum(len(rows[t]) for t in terms) and (mask.data == 1).all()
    by_column = mask.tocsc()
    for j, term in enumerate(terms):
        held = by_column.indices[by_column.indptr[j] : by_column.indptr[j + 1]]
        np.testing.assert_array_equal(np.sort(held), np.sort(rows[term]), err_msg=term)


def test_select_terms_and_display_names():
    sets = {"REACTOME_A_B": ["x", "y"], "KEGG_C": ["x", "y"], "HALLMARK_D": ["x", "y"]}
    assert list(select_terms(sets, prefixes=["REACTOME_", "HALLMARK_"])) == [
        "REACTOME_A_B",
        "HALLMARK_D",
    ]
    assert list(select_terms(sets, exclude=["^KEGG_"])) == ["REACTOME_A_B", "HALLMARK_D"]
    assert display_name("REACTOME_INTERFERON_SIGNALING") == "INTERFERON SIGNALING"
    assert display_name("HALLMARK_HYPOXIA") == "HYPOXIA"
    assert display_name("Interferon alpha/beta signaling") == "Interferon alpha/beta signaling"


def test_merge_gene_sets():
    merged = merge_gene_sets({"a": {"T1": ["x", "y"]}, "b": {"T1": ["y", "x"], "T2": ["z", "w"]}})
    assert merged == {"T1": ["x", "y"], "T2": ["z", "w"]}
    with pytest.raises(GeneSetError, match="'T1' is in both 'a' and 'b' with different genes"):
        merge_gene_sets({"a": {"T1": ["x", "y"]}, "b": {"T1": ["x", "q"]}})


@pytest.mark.parametrize(
    "head",
    [b"<html><body>", b"\xef\xbb\xbf  \r\n<HTML>", b"\n\t<head>", b"<Body>x", b"<!doctype HTML>"],
)
def test_html_pages_are_recognised(head):
    assert looks_like_html(head)


@pytest.mark.parametrize(
    "head", [b"A\tu\t<html>\tG2\n", b"HTML\tu\tG1\tG2\n", b"<htm\tu\tG1", b"X<html>\tu\tG1"]
)
def test_gmt_lines_are_not_html(head):
    assert not looks_like_html(head)


def test_line_endings_of_any_platform_and_genes_ending_in_x(tmp_path):
    for name, newline in (("unix", "\n"), ("windows", "\r\n"), ("old-mac", "\r")):
        path = tmp_path / f"{name}.gmt"
        path.write_bytes(f"A\tu\tG1\tLOX{newline}B\tu\tG3\tNOX{newline}".encode())
        assert read_gmt(path) == {"A": ["G1", "LOX"], "B": ["G3", "NOX"]}, name


def test_dropped_sets_are_counted_in_the_log(tmp_path, caplog):
    path = tmp_path / "small.gmt"
    path.write_text("A\tu\tG1\tG2\nB\tu\tG3\nC\tu\tG4\n")
    with caplog.at_level(logging.INFO, logger="interpretable_ae.genesets"):
        assert read_gmt(path, drop_small=True) == {"A": ["G1", "G2"]}
    assert "small.gmt: dropped 2 gene set(s) with fewer than 2 genes" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="interpretable_ae.genesets"):
        read_gmt(path, min_set_size=1)
    assert "dropped" not in caplog.text


def test_build_mask_bounds_and_messages():
    genes = ["A", "B", "C", "D"]
    sets = {"one": ["A", "X"], "two": ["A", "B"], "four": genes}
    assert build_mask(genes, sets)[1] == ["one", "two", "four"]  # min_genes 1 by default
    assert build_mask(genes, sets, min_genes=2, max_genes=4)[1] == ["two", "four"]  # inclusive
    with pytest.raises(
        GeneSetError, match=r"^gene names are not unique \(e\.g\. \['A', 'B', 'C'\]\)"
    ):
        build_mask(["A", "B", "C", "D", "A", "B", "C", "D"], sets)
    with pytest.raises(GeneSetError, match=r"largest overlap: 0\); check that the gene sets and "):
        build_mask(genes, {"none": ["X", "Y"], "empty": []})


# ---- regression cases found by the fuzzing (test_genesets_fuzz.py) -------------------------


@pytest.mark.parametrize("breaks", ["\x85", "\u2028", "\x0c", "\x1c"])
def test_a_set_name_holding_a_line_break_character_is_named_on_one_line(tmp_path, breaks):
    """A name with NEL, LINE SEPARATOR, form feed or a file separator (line breaks to
    ``str.splitlines``, which reads the error back from the log) is shown escaped, so that
    the error stays one line."""
    path = tmp_path / "sets.gmt"
    path.write_text(f"A{breaks}B\tx\tSTAT1\nC\tx\tSTAT1\tIRF1\n", encoding="utf-8")
    with pytest.raises(GeneSetError) as err:
        read_gmt(path)
    message = str(err.value)
    assert len(message.splitlines()) == 1, repr(message)
    assert f"gene set {f'A{breaks}B'!r} has 1 gene(s)" in message
    path.write_text(f"A{breaks}B\tx\tSTAT1\tIRF1\nA{breaks}B\tx\tSTAT1\tIRF1\n", encoding="utf-8")
    with pytest.raises(GeneSetError, match="duplicate gene set name") as err:
        read_gmt(path)
    assert len(str(err.value).splitlines()) == 1
