"""The demo's planted-condition step (iae_pipeline.prepare.simulation), before preparation."""

from __future__ import annotations

import anndata as ad
import pandas as pd
import pytest

from iae_pipeline.contract import validate_prepared
from iae_pipeline.prepare.datasets import load_pbmc68k_demo
from iae_pipeline.prepare.preprocess import prepare, prepare_from_config
from iae_pipeline.prepare.simulation import simulate_dataset, simulate_from_config
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import GeneSetError
from interpretable_ae.simulate import simulate_counts

DEMO_TERM = "HALLMARK_INTERFERON_GAMMA_RESPONSE"


def test_subsample_is_independent_of_a_simulation_with_the_same_seed():
    """Regression: one seed for both once picked exactly the planted (stimulated) cells."""
    sets = {"IFNG": ["STAT1", "IRF1", "GBP1", "CXCL10", "IDO1", "ISG15", "IFITM3", "HLA-A"]}
    sim = {"terms": ["IFNG"], "strength": 1.0, "fraction": 0.5, "seed": 0}
    planted = simulate_dataset(load_pbmc68k_demo(), sets, sim, data_type="lognorm")
    out = prepare(planted, sets, data_type="lognorm", n_top_genes=None, subsample=350,
                  min_genes=1, seed=0)  # fmt: skip
    counts = out.obs["condition"].value_counts()
    assert out.n_obs == 350 and counts.min() > 120, counts.to_dict()


def test_simulation_on_real_demo_terms(real, tmp_path):
    """The demo config: pbmc68k_reduced, MSigDB 7.5.1 hallmark + Reactome, terms with more
    than 19 genes, and only the genes in those terms."""
    gmts = [
        real("genesets/h.all.v7.5.1.symbols.gmt"),
        real("genesets/c2.cp.reactome.v7.5.1.symbols.gmt"),
    ]
    dataset = {
        "name": "demo",
        "source": "pbmc68k_demo",
        "species": "human",
        "simulation": {"terms": [DEMO_TERM], "strength": 1.0, "fraction": 0.5, "seed": 0},
        "preprocess": {"target_sum": 10000, "n_top_genes": 1000, "subsample": None,
                       "min_genes": 19, "max_genes": None, "min_overlap": 0.2},
    }  # fmt: skip
    specs = [{"name": "hallmark", "prefixes": ["HALLMARK_"]}, {"name": "reactome"}]
    simulated = tmp_path / "demo" / "simulated.h5ad"
    simulate_from_config(dataset, {}, gmts, specs, None, simulated)
    out_path = tmp_path / "demo" / "prepared.h5ad"
    prepare_from_config(dataset, {"simulated": str(simulated)}, gmts, specs, None, 0, out_path)
    out = ad.read_h5ad(out_path)
    validate_prepared(out)
    terms = list(out.uns[TERMS_KEY])
    # 535 annotated genes, of which those in the 51 kept terms
    assert out.n_obs == 700 and out.n_vars + out.uns["prepare"]["n_genes_pruned"] == 535
    assert 30 <= len(terms) <= 60 and out.uns["prepare"]["n_genes_pruned"] > 0
    assert DEMO_TERM in terms
    assert out.obs["condition"].value_counts().to_dict() == {"control": 350, "stimulated": 350}
    planted = out.var_names[out.varm[MASK_KEY][:, terms.index(DEMO_TERM)].toarray().ravel() == 1]
    stim = (out.obs["condition"] == "stimulated").to_numpy()
    X = out.X.toarray()
    on = out.var_names.isin(planted)
    assert X[stim][:, on].mean() - X[~stim][:, on].mean() > 0.3
    assert abs(X[stim][:, ~on].mean() - X[~stim][:, ~on].mean()) < 0.05
    assert sorted(p.name for p in out_path.parent.iterdir()) == ["prepared.h5ad", "simulated.h5ad"]


def test_simulation_term_must_exist():
    adata, sets = simulate_counts(n_cells=100, n_genes=100, n_sets=5, seed=0)
    del adata.obs["condition"]
    with pytest.raises(GeneSetError, match=r"simulation terms \['HALLMARK_NOPE'\] not in"):
        simulate_dataset(adata, sets, {"terms": ["HALLMARK_NOPE"]}, data_type="lognorm")


def test_simulated_donors_make_a_paired_design_and_change_nothing_else():
    sets = {"IFNG": ["STAT1", "IRF1", "GBP1", "CXCL10", "IDO1", "ISG15", "IFITM3", "HLA-A"]}
    sim = {"terms": ["IFNG"], "strength": 1.0, "fraction": 0.5, "seed": 0}
    plain = simulate_dataset(load_pbmc68k_demo(), sets, sim, data_type="lognorm")
    donors = simulate_dataset(load_pbmc68k_demo(), sets, sim | {"donors": 6}, data_type="lognorm")
    assert "donor" not in plain.obs
    assert (plain.X == donors.X).all()  # the planted draws do not depend on the donors
    assert (plain.obs["condition"] == donors.obs["condition"]).all()
    table = pd.crosstab(donors.obs["donor"], donors.obs["condition"])
    assert table.shape == (6, 2) and table.to_numpy().min() > 30  # both conditions each
    with pytest.raises(ValueError, match="simulation.donors must be between 2"):
        simulate_dataset(load_pbmc68k_demo(), sets, sim | {"donors": 1}, data_type="lognorm")
