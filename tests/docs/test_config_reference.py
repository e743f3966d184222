"""The config reference is written from the schema: every key the schema allows is on it,
with what the schema says of it."""

from __future__ import annotations

import sys

import pytest

from helpers import ROOT

sys.path.insert(0, str(ROOT / "docs" / "_ext"))

from config_schema import load_schema, property_names, schema_entries  # noqa: E402

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def entries() -> dict[str, object]:
    """Entries by path; a key allowed under a condition by ``path [condition]``."""
    listed = schema_entries(load_schema(SCHEMA))
    out = {e.path + (f" [{e.condition}]" if e.condition else ""): e for e in listed}
    assert len(out) == len(listed), "two entries for one key under one condition"
    return out


def test_every_schema_key_is_listed(entries):
    """Every name under a ``properties`` anywhere in the schema (in $defs, behind $ref,
    in an if/then) ends a listed path."""
    names = property_names(load_schema(SCHEMA))
    listed = {e.path.rsplit(".", 1)[-1] for e in entries.values()}
    assert names and not names - listed, sorted(names - listed)


def test_paths_types_and_bounds(entries):
    strength = entries["datasets.<name>.simulation.strength"]
    assert strength.kind == "number" and strength.constraints == ["> 0"]
    # $defs reached through $ref, under the global and the per-dataset keys alike
    for path in ("preprocess.min_overlap", "datasets.<name>.preprocess.min_overlap"):
        assert entries[path].constraints == [">= 0", "<= 1"]
        assert "wrong species" in entries[path].description
    assert entries["figures.fig2.terms"].kind == "string or array of string"
    assert entries["analyses.donor_test.test"].kind == 'one of "t", "wilcoxon"'
    assert entries["analyses.donor_test.test"].default == '"t"'
    assert entries["seed"].default == "0"


def test_required_and_conditional_keys(entries):
    assert entries["datasets"].required == "required"
    assert entries["genesets.<name>.url"].required == 'required when source is "url"'
    assert entries["datasets.<name>.paired"].required == "required with sample_key"
    # options allowed by model kind; n_dense for both kinds, min_genes for slalom only
    for kind in ("autoencoder", "slalom"):
        assert f'models.<name>.options.n_dense [kind is "{kind}"]' in entries
    assert 'models.<name>.options.min_genes [kind is "slalom"]' in entries
    assert 'models.<name>.options.min_genes [kind is "autoencoder"]' not in entries
    assert 'models.<name>.options.epochs [kind is "autoencoder"]' in entries


def test_the_docs_page_uses_the_workflow_schema():
    page = (ROOT / "docs" / "config.md").read_text()
    assert "```{config-schema} ../workflow/schemas/config.schema.yaml" in page
