"""Finding the config's terms among a model's factors.

A term is found by its exact name, else by its display name compared case- and
punctuation-insensitively (:func:`iae_pipeline.contract.term_key`), so ``INTERFERON
SIGNALING`` finds both ``REACTOME_INTERFERON_SIGNALING`` and reactome.org's ``Interferon
Signaling``. A term that is absent or switched off never raises: the lookup says so, and
the figure prints it as a note.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad

from iae_pipeline.contract import term_key
from interpretable_ae.genesets import display_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TermLookup:
    """Where a requested term was found among a model's factors."""

    query: str
    term: str | None = None
    active: bool = False
    ambiguous: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.term is not None

    @property
    def label(self) -> str:
        return display_name(self.term if self.term is not None else self.query)

    @property
    def note(self) -> str:
        """Empty when all is well, else one sentence for the figure and the log."""
        if self.term is None:
            return f"'{self.query}' is not among the model's factors (absent)."
        notes = []
        if not self.active:
            notes.append(f"'{self.label}' is switched off (zero decoder weights) in this model.")
        if self.ambiguous:
            notes.append(f"'{self.query}' also matches {list(self.ambiguous)}; drew '{self.term}'.")
        return " ".join(notes)


def resolve_term(names: Sequence[str], query: str) -> tuple[str | None, tuple[str, ...]]:
    """Find a term among factor names: the exact name, else by
    :func:`iae_pipeline.contract.term_key` (case and punctuation ignored, prefix dropped).

    Parameters
    ----------
    names
        The factor names.
    query
        A term as the config gives it.

    Returns
    -------
    match : str or None
        The factor found.
    others : tuple of str
        Other factors the query also matches.

    Examples
    --------
    >>> resolve_term(["REACTOME_INTERFERON_SIGNALING", "HALLMARK_APOPTOSIS"], "interferon signaling")
    ('REACTOME_INTERFERON_SIGNALING', ())
    """
    names = [str(n) for n in names]
    if query in names:
        return query, ()
    key = term_key(query)
    hits = [n for n in names if term_key(n) == key]
    return (hits[0], tuple(hits[1:])) if hits else (None, ())


def lookup_terms(adata: ad.AnnData, queries: Sequence[str]) -> list[TermLookup]:
    """Find each requested term among the factors of a factor file.

    Parameters
    ----------
    adata
        A factor file.
    queries
        Terms as the config gives them.

    Returns
    -------
    list of TermLookup
        One per query: the factor found, whether it is active, other matches.
    """
    out = []
    for query in queries:
        term, others = resolve_term(adata.var_names, str(query))
        active = bool(adata.var.loc[term, "active"]) if term is not None else False
        out.append(TermLookup(str(query), term, active, others))
    return out


def select_terms(names: Sequence[str], spec: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """The terms a figure draws.

    Parameters
    ----------
    names
        The factor names.
    spec
        A regular expression (a string, searched case-insensitively in the full and the
        display name) or a list of names (each found as :func:`resolve_term`).

    Returns
    -------
    found : list of str
        In the order of ``names`` for a regular expression, of ``spec`` for a list.
    not_found : list of str
        The list's names that match no factor.

    Examples
    --------
    >>> select_terms(["HALLMARK_INTERFERON_GAMMA_RESPONSE", "REACTOME_TCR_SIGNALING"], "interferon")
    (['HALLMARK_INTERFERON_GAMMA_RESPONSE'], [])
    """
    names = list(dict.fromkeys(str(n) for n in names))
    if isinstance(spec, str):
        try:
            pattern = re.compile(spec, flags=re.IGNORECASE)
        except re.error as err:
            raise ValueError(
                f"figure terms: '{spec}' is not a valid regular expression ({err}); give a "
                "regular expression or a list of term names"
            ) from None
        return [n for n in names if pattern.search(n) or pattern.search(display_name(n))], []
    found, missing = [], []
    for query in spec:
        term, _ = resolve_term(names, str(query))
        (found if term is not None else missing).append(term if term is not None else str(query))
    return list(dict.fromkeys(found)), missing
