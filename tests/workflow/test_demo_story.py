"""The paper's comparison on the demo's own data.

The demo config's dataset (pbmc68k_reduced with its planted stimulation) is prepared with
the same MSigDB 7.5.1 hallmark + Reactome sets (real test files), then each
model of the demo config is fitted with its configured options and scored as the workflow
scores it. The story: the autoencoder and f-scLVM without dense factors put the planted
term first; with 3 dense factors, f-scLVM hands the signal to a dense factor.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import ROOT
from iae_pipeline.analyses.baselines import score_genes_table, term_gene_sets
from iae_pipeline.contract import make_factor_anndata
from iae_pipeline.fit.autoencoder import fit_autoencoder
from iae_pipeline.fit.slalom import fit_slalom
from iae_pipeline.prepare.datasets import load_pbmc68k_demo
from iae_pipeline.prepare.preprocess import load_gene_sets, prepare
from iae_pipeline.prepare.simulation import simulate_dataset
from iae_pipeline.score.scoring import score_factors

CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").open())
DEMO = CONFIG["datasets"]["demo"]
MODELS = CONFIG["models"]
PLANTED = DEMO["simulation"]["terms"][0]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(real: Path) -> ad.AnnData:
    gmts = [
        real("genesets/h.all.v7.5.1.symbols.gmt"),
        real("genesets/c2.cp.reactome.v7.5.1.symbols.gmt"),
    ]
    sets = load_gene_sets(gmts, [{"name": "hallmark"}, {"name": "reactome"}])
    options = {**CONFIG["preprocess"], **DEMO.get("preprocess", {})}
    planted = simulate_dataset(
        load_pbmc68k_demo(), sets, DEMO["simulation"], data_type="lognorm", name="demo"
    )
    return prepare(planted, sets, data_type="lognorm", seed=CONFIG["seed"], name="demo", **options)


def _scores(factors: ad.AnnData) -> pd.DataFrame:
    table = score_factors(factors, cv_folds=CONFIG["scoring"]["cv_folds"], seed=CONFIG["seed"])
    return table.set_index("term").sort_values("accuracy_cv", ascending=False)


def test_the_demo_plants_a_broad_response(demo: ad.AnnData) -> None:
    sim = demo.uns["simulation"]
    assert sim["extra_genes"] > 0 and sim["n_genes_planted"] > 0.3 * demo.n_vars


def _lead(accuracy: pd.Series) -> float:
    """How far the planted term's accuracy is ahead of the best other term's."""
    return float(accuracy[PLANTED] - accuracy.drop(PLANTED).max())


def test_autoencoder_puts_the_planted_term_first(demo: ad.AnnData) -> None:
    """First, and further ahead of the runner-up than the two model-free scores of a gene set
    are: its genes' mean expression and scanpy's score_genes also put the planted term
    first here (0.989 and 0.983), but with leads of 0.02 and 0.12 over terms that share its
    genes (INFLAMMATORY_RESPONSE), where the autoencoder's factor leads by 0.19. (Seed 1:
    0.18; seed 2 puts it third, 0.85: the replicates of the demo show the spread.)"""
    torch.set_num_threads(1)
    options = MODELS["ae"]["options"]
    _, factors = fit_autoencoder(demo, options, seed=CONFIG["seed"], setup="ae", progress=False)
    scores = _scores(factors)
    assert scores.index[0] == PLANTED and scores["accuracy_cv"].iloc[0] > 0.9, scores.head()
    sets = term_gene_sets(demo)
    mask = demo.varm["geneset_mask"].toarray()
    mean = make_factor_anndata(
        np.asarray(demo.X @ mask) / mask.sum(axis=0), demo.obs, list(sets),
        ["annotated"] * len(sets), mask, demo.var_names, np.ones(len(sets), bool),
        {"model": "mean expression", "setup": "baseline", "seed": 0, "seconds": 0.0},
    )  # fmt: skip
    folds = CONFIG["scoring"]["cv_folds"]
    module_score = score_genes_table(demo, sets, cv_folds=folds, seed=CONFIG["seed"])
    baselines = {
        "mean expression": _scores(mean)["accuracy_cv"],
        "score_genes": module_score.set_index("term")["score_accuracy_cv"],
    }
    lead = _lead(scores.loc[scores["kind"] == "annotated", "accuracy_cv"])
    for name, accuracy in baselines.items():
        assert lead > _lead(accuracy) + 0.05, (name, lead, _lead(accuracy))


def test_slalom_without_dense_factors_puts_the_planted_term_first(demo: ad.AnnData) -> None:
    options = MODELS["slalom"]["options"]
    assert options["n_dense"] == 0
    scores = _scores(fit_slalom(demo, options, seed=CONFIG["seed"], setup="slalom"))
    assert scores.index[0] == PLANTED and scores["accuracy_cv"].iloc[0] > 0.9, scores.head()


def test_slalom_dense_factors_take_the_signal(demo: ad.AnnData) -> None:
    options = MODELS["slalom_dense"]["options"]
    assert options["n_dense"] == 3
    scores = _scores(fit_slalom(demo, options, seed=CONFIG["seed"], setup="slalom_dense"))
    best_dense = scores.loc[scores["kind"] == "dense", "accuracy_cv"].max()
    assert scores["kind"].iloc[0] == "dense" and best_dense > 0.9, scores.head()
    assert scores.loc[PLANTED, "accuracy_cv"] < best_dense - 0.3
