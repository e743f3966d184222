"""The GMT reader under generated input (hypothesis): every file gives a valid collection or
one GeneSetError line naming the file, never another exception.

The generated files mix what real GMT files hold (MSigDB and reactome.org layouts, any
Unicode in names, CRLF and CR line ends, a byte-order mark, blank fields) with what a user
can hand over by mistake (blank lines, too few fields, duplicates, one-gene sets, Latin-1
and UTF-16 bytes, HTML pages, NUL bytes, random bytes). The regression cases found by the
fuzzing, and kept, are in ``test_genesets.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from helpers.fuzz import FUZZ, assert_one_line, kind
from interpretable_ae.genesets import GeneSetError, decode_gmt, read_gmt

pytestmark = pytest.mark.slow

# fields: any text without the separators, sometimes blank or padded
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\r\n"), max_size=12
)
_gene = st.one_of(
    st.sampled_from(["STAT1", "IRF1", "ISG15", "gag", "HLA-A", " CD14 ", "", "STAT1"]), _text
)
_set = st.tuples(
    st.one_of(st.sampled_from(["REACTOME_IFN", "HALLMARK_HYPOXIA", "Interferon Signaling"]), _text),
    st.sampled_from(["http://x", "R-HSA-913531", "", "desc"]),
    st.lists(_gene, min_size=2, max_size=6),
).map(lambda t: "\t".join([t[0], t[1], *t[2]]))
# mostly sets as MSigDB and reactome.org write them; sometimes any tab-separated fields
_junk = st.lists(_text, max_size=4).map("\t".join)
_line = st.sampled_from([0] * 9 + [1]).flatmap(lambda k: _junk if k else _set)
_ending = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def gmt_bytes(draw: st.DrawFn) -> bytes:
    """A GMT-like file: lines of tab-separated fields, then a chosen encoding or damage."""
    lines = draw(st.lists(_line, min_size=draw(st.sampled_from([0] + [1] * 9)), max_size=8))
    if draw(st.integers(0, 9)) > 1:  # most files: one name per set
        lines = [f"S{i}_{line}" for i, line in enumerate(lines)]
    if lines and draw(st.integers(0, 9)) == 0:
        lines.append(draw(st.sampled_from(lines)))  # a duplicate set
    ending = draw(_ending)
    text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "latin-1", "utf-16", "bytes"]))
    if encoding == "bytes":
        return draw(st.binary(max_size=200))
    data = text.encode(encoding, errors="replace")
    prefix = draw(st.sampled_from([b""] * 12 + [b"<!DOCTYPE html><html>", b"\x00", b"\xff"]))
    return prefix + data


def _valid(sets: dict[str, list[str]], min_size: int = 2) -> None:
    assert sets, "an empty collection was returned"
    for name, genes in sets.items():
        assert name and name == name.strip() and "\t" not in name
        assert len(genes) >= min_size and len(set(genes)) == len(genes)
        assert all(g and g == g.strip() and "\t" not in g for g in genes)


@FUZZ
@given(data=gmt_bytes(), drop_small=st.booleans())
def test_read_gmt_gives_sets_or_one_line(data: bytes, drop_small: bool):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "sets.gmt"
        path.write_bytes(data)
        try:
            sets = read_gmt(path, drop_small=drop_small)
        except GeneSetError as err:
            assert_one_line(err, str(path))
            assert str(err).startswith(str(path))
            event(f"refused: {kind(err)}")
        else:
            _valid(sets)
            event("read")


@FUZZ
@given(data=st.one_of(gmt_bytes(), st.binary(max_size=300)))
def test_decode_gmt_gives_text_or_one_line(data: bytes):
    try:
        text = decode_gmt(data, "where.gmt")
    except GeneSetError as err:
        assert_one_line(err, "where.gmt")
    else:
        assert isinstance(text, str) and not text.startswith("\ufeff")
