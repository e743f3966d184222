"""Prepared data checked before any fit: what a later step would refuse is refused now."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from iae_pipeline.prepare.checks import check_finite, check_ready_to_fit
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import build_mask

TERMS = ["REACTOME_INTERFERON_SIGNALING", "HALLMARK_HYPOXIA", "Signaling by the B Cell Receptor"]


@pytest.fixture()
def prepared() -> ad.AnnData:
    """40 cells (20 per class), 6 genes, the three TERMS."""
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(6)]
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(["ctrl", "stim"] * 20),
            "cell_type": pd.Categorical(["B", "T", "NK", "B"] * 10),
            "batch": ["a", "b"] * 20,
        },
        index=[f"c{i}" for i in range(40)],
    )
    adata = ad.AnnData(rng.random((40, 6), dtype=np.float32), obs=obs)
    adata.var_names = genes
    sets = {TERMS[0]: genes[:3], TERMS[1]: genes[2:5], TERMS[2]: genes[3:]}
    adata.varm[MASK_KEY], terms = build_mask(genes, sets)
    adata.uns[TERMS_KEY] = np.asarray(terms, dtype=object)
    return adata


def _needs(**changes) -> dict:
    needs = {
        "source": "data/mine.h5ad",
        "dataset": "mine",
        "cv_folds": 5,
        "covariates": {},
        "figures": {
            "fig1": {"model": "ae", "terms": ["INTERFERON SIGNALING", "hypoxia"]},
            "fig2": {"terms": "interferon|B CELL"},
            "fig3": {"terms": [TERMS[0], "dense_0"], "cell_types": ["B"], "group_key": "batch"},
        },
    }
    return needs | changes


def test_prepared_data_that_every_step_accepts_pass(prepared):
    check_ready_to_fit(prepared, _needs())
    prepared.X = sp.csr_matrix(prepared.X)  # prepared X is sparse CSR in the workflow
    check_ready_to_fit(prepared, _needs())


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_every_value_is_checked_for_nan_and_inf(prepared, sparse):
    X = np.asarray(prepared.X).copy()
    X[17, 5], X[33, 0] = np.nan, np.inf  # one value each, far from any sample's reach
    prepared.X = sp.csr_matrix(X) if sparse else X
    with pytest.raises(ValueError, match=r"^data/mine\.h5ad: the prepared expression: 2 NaN") as e:
        check_ready_to_fit(prepared, _needs())
    assert "in 2 cell(s) (first: 'c17')" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match="row 7"):
        check_finite(np.where(np.arange(12)[:, None] == 7, np.nan, 1.0), "X", chunk=5)


def test_fewer_cells_per_class_than_cv_folds_is_refused_before_the_fits(prepared):
    with pytest.raises(ValueError, match=r"scoring\.cv_folds = 30.*lower scoring\.cv_folds to 20"):
        check_ready_to_fit(prepared, _needs(cv_folds=30))
    one = prepared[[*range(0, 40, 2), 1]].copy()  # 'stim' keeps one cell
    with pytest.raises(ValueError, match=r"\{'stim': 1\}.*needs at least 2 cells.*condition_key"):
        check_ready_to_fit(one, _needs(cv_folds=2))


def test_covariates_must_be_complete_obs_columns(prepared):
    with pytest.raises(
        ValueError, match=r"^models\.ae\.options\.covariates: 'donor' is not an obs"
    ):
        check_ready_to_fit(prepared, _needs(covariates={"ae": ["batch", "donor"]}))
    prepared.obs.loc["c3", "batch"] = None
    with pytest.raises(ValueError, match=r"obs\['batch'\] of data/mine\.h5ad has 1 missing"):
        check_ready_to_fit(prepared, _needs(covariates={"ae": ["batch"]}))


@pytest.mark.parametrize(
    ("fig", "spec", "message"),
    [
        ("fig1", {"terms": ["REACTOME_INTERFERON_SIGNALLING", TERMS[1]]},
         r"figures\.fig1\.terms \(dataset mine\): \['REACTOME_INTERFERON_SIGNALLING'\] not "
         r"among the 3 prepared terms \(closest: \['REACTOME_INTERFERON_SIGNALING'\]\)"),
        ("fig2", {"terms": "INTERFERON_GAMMA"}, r"figures\.fig2\.terms.*matches none of the 3"),
        ("fig2", {"terms": "INTERFERON("}, r"figures\.fig2\.terms.*not a valid regular expr"),
        ("fig2", {"terms": ["REACTOME_MISSING"]}, r"\['REACTOME_MISSING'\] not among"),
        ("fig3", {"cell_types": ["B", "Mono"]}, r"figures\.fig3\.cell_types.*\['Mono'\] are not"),
        ("fig3", {"group_key": "group"}, r"figures\.fig3\.group_key.*'group' is not an obs"),
        ("fig3", {"groups": ["a", "c"]}, r"figures\.fig3\.groups.*\['c'\] are not values"),
    ],
)  # fmt: skip
def test_figure_terms_and_patterns_are_checked_before_the_fits(prepared, fig, spec, message):
    needs = _needs()
    needs["figures"][fig] = {**needs["figures"][fig], **spec}
    with pytest.raises(ValueError, match=message) as e:
        check_ready_to_fit(prepared, needs)
    assert "\n" not in str(e.value)


def test_a_figure2_list_may_name_terms_the_size_filter_dropped(prepared, caplog):
    needs = _needs()
    needs["figures"]["fig2"] = {"terms": [TERMS[0], "REACTOME_MISSING"]}
    check_ready_to_fit(prepared, needs)  # drawn as absent in the figure, with a log line
    assert "['REACTOME_MISSING'] not among the" in caplog.text


def test_the_sample_design_is_checked_before_the_fits(prepared):
    prepared.obs["donor"] = [f"d{(i // 2) % 4}" for i in range(40)]  # each in both classes
    check_ready_to_fit(prepared, _needs(samples={"sample_key": "donor", "paired": True}))
    with pytest.raises(ValueError, match="^data/mine.h5ad: obs\\['individual'\\] is missing"):
        check_ready_to_fit(prepared, _needs(samples={"sample_key": "individual", "paired": True}))
    with pytest.raises(ValueError, match="set paired: true"):
        check_ready_to_fit(prepared, _needs(samples={"sample_key": "donor", "paired": False}))


def test_figure3_is_only_checked_when_drawn(prepared):
    needs = _needs()
    needs["figures"]["fig3"] = {"model": "ae"}  # no terms or cell types: not drawn
    check_ready_to_fit(prepared, needs)


# ---- regression cases found by the fuzzing (test_inputs_fuzz.py) ---------------------------


@pytest.mark.parametrize("breaks", ["\x1e", "\x85", "\u2028"])
def test_a_figure_pattern_holding_a_line_break_character_is_named_on_one_line(prepared, breaks):
    """Figure 2's pattern, a record separator or NEL (line breaks to ``str.splitlines``),
    matches no term: the error quotes it escaped, on one line."""
    needs = _needs()
    needs["figures"]["fig2"]["terms"] = breaks
    with pytest.raises(ValueError, match="figures.fig2.terms") as err:
        check_ready_to_fit(prepared, needs)
    assert len(str(err.value).splitlines()) == 1, repr(str(err.value))
    assert repr(breaks)[1:-1] in str(err.value)
