"""Finding the config's terms among a model's factors; stable category colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from helpers.figures import (  # noqa: E402
    BCR,
    GAMMA,
    IFN,
    fake_factors,
)
from iae_pipeline.figures.style import category_colors  # noqa: E402
from iae_pipeline.figures.terms import lookup_terms, resolve_term, select_terms  # noqa: E402


def test_term_lookup_by_display_name():
    names = [IFN, BCR, "Interferon Signaling", "Signaling by the B Cell Receptor (BCR)"]
    assert resolve_term(names, IFN) == (IFN, ())
    assert resolve_term(names, "INTERFERON SIGNALING") == (IFN, ("Interferon Signaling",))
    assert resolve_term(names[2:], "INTERFERON SIGNALING")[0] == "Interferon Signaling"
    assert resolve_term(names[2:], BCR)[0] == "Signaling by the B Cell Receptor (BCR)"
    assert resolve_term(names[:2], "SIGNALING BY THE B CELL RECEPTOR (BCR)")[0] == BCR
    assert resolve_term(names, "INTERFERON") == (None, ())
    found = lookup_terms(fake_factors("ae", 2.0), ["interferon signaling", GAMMA, "NOPE"])
    assert [f.term for f in found] == [IFN, GAMMA, None]
    assert [f.usable for f in found] == [True, True, False]
    assert found[0].note == "" and "switched off" in found[1].note and "absent" in found[2].note


def test_select_terms_regex_or_list():
    names = [IFN, BCR, GAMMA, "Interferon alpha/beta signaling"]
    assert select_terms(names, "interferon") == ([IFN, GAMMA, names[3]], [])
    assert select_terms(names, [BCR, "NOPE", "interferon signaling"]) == ([BCR, IFN], ["NOPE"])
    with pytest.raises(ValueError, match="regular expression"):
        select_terms(names, "INTERFERON(")


def test_category_colours_are_stable_and_honour_uns():
    a = category_colors(["control", "stimulated"])
    assert a == category_colors(["control", "stimulated"]) and len(set(a.values())) == 2
    uns = {"condition_colors": ["#111111", "#222222"]}
    assert category_colors(["control", "stimulated"], uns, "condition")["control"] == "#111111"
    assert len(set(category_colors([f"t{i}" for i in range(15)]).values())) == 15
