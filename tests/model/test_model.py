"""The estimator: scverse-shaped API, determinism, persistence and bad input."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression

from helpers import LIB
from interpretable_ae import InterpretableAutoencoder
from interpretable_ae import data as data_module
from interpretable_ae.genesets import build_mask
from interpretable_ae.model import KEY, factor_signs
from interpretable_ae.module import flip_factors_, objective
from interpretable_ae.prox import decoder_penalty, l1_weights
from interpretable_ae.simulate import simulate_counts
from interpretable_ae.training import evaluate, split_cells

FAST = {"epochs": 3, "batch_size": 32, "progress": False}
MODEL_PACKAGE = LIB / "interpretable_ae"


def make(adata, gene_sets, **kw):
    kw = {"n_sparse": 2, "n_dense": 1, "hidden": (32, 32), "seed": 0} | kw
    return InterpretableAutoencoder(adata, gene_sets, **kw)


def test_the_model_package_imports_nothing_of_the_pipeline():
    for path in MODEL_PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "iae_pipeline" for n in names), path.name
    code = (
        "import sys; from interpretable_ae import InterpretableAutoencoder; "
        "import interpretable_ae.simulate, interpretable_ae.genesets; "
        "print(sorted(m for m in sys.modules if m.startswith('iae_pipeline')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(MODEL_PACKAGE.parent), "PATH": ""},
    )  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_training_leaves_the_anndata_alone_and_results_are_written_on_request(small_data):
    adata, gene_sets = small_data
    before = adata.copy()
    ae = make(adata, gene_sets)
    assert not ae.is_trained
    ae.train(**FAST)
    assert ae.is_trained
    assert not adata.obsm and not adata.varm and set(adata.uns) == set(before.uns)
    np.testing.assert_array_equal(adata.X, before.X)

    ae.write_results(adata)
    n_factors = 8 + 2 + 1
    assert adata.obsm[f"X_{KEY}"].shape == (adata.n_obs, n_factors)
    assert adata.varm[f"W_{KEY}"].shape == (adata.n_vars, n_factors)
    info = adata.uns[KEY]
    assert info["factor_names"][-3:] == ["sparse_0", "sparse_1", "dense_0"]
    assert info["kinds"].count("annotated") == 8
    np.testing.assert_array_equal(adata.obsm[f"X_{KEY}"], ae.get_latent_representation())


def test_two_models_share_one_anndata_under_their_own_keys(small_data):
    adata, gene_sets = small_data
    a = make(adata, gene_sets).train(**FAST)
    b = make(adata, gene_sets, n_dense=0, seed=1).train(**FAST)
    a.write_results(adata, key_added="ae_a")
    b.write_results(adata, key_added="ae_b")
    assert adata.obsm["X_ae_a"].shape[1] == 11 and adata.obsm["X_ae_b"].shape[1] == 10
    assert adata.uns["ae_a"]["factor_names"] != adata.uns["ae_b"]["factor_names"]
    # genes of the AnnData the model lacks get zero weights
    wide = adata.copy()
    wide.var_names = [*adata.var_names[:-1], "NOT_IN_MODEL"]
    a.write_results(wide, key_added="ae_a", latent=False)
    assert (wide.varm["W_ae_a"][-1] == 0).all()


def test_loadings_history_and_term_lookups(small_data):
    adata, gene_sets = small_data
    ae = make(adata, gene_sets).train(epochs=3, batch_size=32, lambda3=50.0, progress=False)
    loadings = ae.get_loadings()
    assert loadings.shape == (120, 11)
    assert list(loadings.index) == list(adata.var_names)
    assert list(loadings.columns) == ae.factor_names
    np.testing.assert_array_equal(loadings.to_numpy(), ae.module.decoder_weight.detach())
    history = ae.history
    assert isinstance(history, pd.DataFrame) and len(history) == 3
    assert {"train_loss", "val_loss", "seconds", "n_active"} <= set(history.columns)
    assert history["val_loss"].isna().all()  # no validation split
    by_norm = ae.terms_by_norm()
    decoder = ae.module.decoder_weight.detach().numpy().astype(np.float64)
    column_norms = pd.Series(np.linalg.norm(decoder, axis=0), index=ae.factor_names)
    expected = column_norms[list(gene_sets)].sort_values(ascending=False, kind="stable")
    assert list(by_norm.index) == list(expected.index)
    np.testing.assert_allclose(by_norm.to_numpy(), expected.to_numpy(), rtol=1e-6)
    assert expected.nunique() == len(gene_sets)  # distinct norms: the order is a real check
    everything = ae.terms_by_norm(None)
    assert sorted(everything.index) == sorted(ae.factor_names)
    np.testing.assert_allclose(everything, column_norms[everything.index], rtol=1e-6)
    assert (np.diff(everything.to_numpy()) <= 0).all()
    assert set(ae.terms_by_norm("sparse").index) == {"sparse_0", "sparse_1"}
    assert set(ae.active_terms()) == set(by_norm.index[by_norm > 0])
    genes = ae.term_genes("SET_001")
    assert set(genes.index[genes["in_annotation"]]) == set(gene_sets["SET_001"])
    np.testing.assert_array_equal(genes["gained"], (genes["weight"] != 0) & ~genes["in_annotation"])
    with pytest.raises(ValueError, match="not a factor"):
        ae.term_genes("NO_SUCH_TERM")


@pytest.mark.parametrize(
    "schedule",
    [{}, {"warmup_epochs": 0.5, "lr_decay": "cosine"}, {"decoder_solve": "epoch"}],
)
def test_seeded_training_is_bit_identical(small_data, schedule):
    adata, gene_sets = small_data
    runs = [make(adata.copy(), gene_sets).train(**FAST, **schedule, seed=3) for _ in range(2)]
    assert runs[0].params()["decoder_solve"] == schedule.get("decoder_solve", "none")
    assert torch.equal(runs[0].module.decoder_weight, runs[1].module.decoder_weight)
    np.testing.assert_array_equal(
        runs[0].get_latent_representation(), runs[1].get_latent_representation()
    )
    other = make(adata.copy(), gene_sets).train(**FAST, seed=4)
    assert not torch.equal(runs[0].module.decoder_weight, other.module.decoder_weight)


def test_training_leaves_the_global_rng_alone(small_data):
    adata, gene_sets = small_data
    state = torch.get_rng_state()
    make(adata, gene_sets).train(**FAST)
    assert torch.equal(state, torch.get_rng_state())


def test_one_cell_tail_and_validation_with_early_stopping(small_data):
    adata, gene_sets = small_data  # 161 cells; 129 train cells % 64 == 1
    ae = make(adata, gene_sets).train(
        epochs=40, batch_size=64, lr=5e-2, val_fraction=0.2, patience=2, progress=False
    )
    hist, best = ae.history, ae.history.attrs["best_epoch"]
    assert hist["val_loss"].notna().all()
    # it stopped: 2 epochs (the patience) after the best one, whose loss no later one beat
    assert hist.attrs["stopped_early"] and len(hist) == best + 1 + 2 < 40
    assert (hist["val_loss"].iloc[best + 1 :] > hist["val_loss"].iloc[best]).all()
    assert hist["val_loss"].iloc[best] == hist["val_loss"].min()
    # and kept the best epoch's weights, not the last epoch's
    _, val_cells = split_cells(adata.n_obs, 0.2, seed=0)
    centred = torch.from_numpy(adata.X - ae.gene_means)
    kept, _ = evaluate(ae.module, centred, 0.1, rows=val_cells.numpy())
    assert kept == pytest.approx(hist["val_loss"].iloc[best], rel=1e-6)
    assert kept < hist["val_loss"].iloc[-1] * (1 - 1e-3)


def test_save_load_gives_identical_latents_and_bytes(small_data, tmp_path):
    adata, gene_sets = small_data
    ae = make(adata, gene_sets, covariates=["cell_type"]).train(**FAST)
    ae.save(tmp_path / "model")
    assert not list((tmp_path / "model").glob("*.pkl"))
    back = InterpretableAutoencoder.load(tmp_path / "model", adata)
    assert back.is_trained
    np.testing.assert_array_equal(back.get_latent_representation(), ae.get_latent_representation())
    assert back.factor_names == ae.factor_names
    assert back.term_genes("SET_000").equals(ae.term_genes("SET_000"))
    with pytest.raises(ValueError, match="already holds"):
        ae.save(tmp_path / "model")
    # no wall time in the files: the same training gives the same bytes
    again = make(adata, gene_sets, covariates=["cell_type"]).train(**FAST)
    again.save(tmp_path / "again")
    for name in ("config.json", "model.safetensors", "annotation.safetensors"):
        assert (tmp_path / "model" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_load_and_latents_treat_gene_order_and_missing_genes_alike(small_data, tmp_path):
    adata, gene_sets = small_data
    ae = make(adata, gene_sets).train(**FAST)
    ae.save(tmp_path / "m")
    z = ae.get_latent_representation()
    shuffled = adata[:, np.random.default_rng(0).permutation(adata.n_vars)].copy()
    np.testing.assert_allclose(ae.get_latent_representation(shuffled), z, rtol=1e-5, atol=1e-5)
    loaded = InterpretableAutoencoder.load(tmp_path / "m", shuffled)
    np.testing.assert_allclose(loaded.get_latent_representation(), z, rtol=1e-5, atol=1e-5)

    dropped = adata[:, 5:].copy()
    missing = "5 of the model's 120 genes are missing .* set to their training mean"
    with pytest.warns(UserWarning, match=missing):
        z_missing = ae.get_latent_representation(dropped)
    with pytest.warns(UserWarning, match=missing):
        loaded = InterpretableAutoencoder.load(tmp_path / "m", dropped)
    with pytest.warns(UserWarning, match=missing):
        np.testing.assert_array_equal(loaded.get_latent_representation(), z_missing)
    mean_filled = adata.copy()  # a missing gene counts as its training mean (0 once centred)
    mean_filled.X[:, :5] = ae.gene_means[:5]
    np.testing.assert_allclose(
        z_missing, ae.get_latent_representation(mean_filled), rtol=1e-5, atol=1e-5
    )
    duplicated = adata[:, ::-1].copy()
    duplicated.var_names = [*duplicated.var_names[:-1], duplicated.var_names[0]]
    for call in (
        lambda: ae.get_latent_representation(duplicated),
        lambda: InterpretableAutoencoder.load(tmp_path / "m", duplicated),
    ):
        with pytest.raises(ValueError, match="var_names are not unique"):
            call()


def test_strong_group_lasso_switches_factors_off(small_data):
    adata, gene_sets = small_data
    ae = make(adata, gene_sets).train(epochs=2, batch_size=32, lambda3=1e4, progress=False)
    assert ae.active_terms(kind=None) == []
    assert not ae.factor_table()["active"].any()


def test_results_anndata_and_the_prepared_mask(small_data):
    adata, gene_sets = small_data
    mask, terms = build_mask(adata.var_names, gene_sets)
    adata.varm["geneset_mask"], adata.uns["geneset_terms"] = mask, terms
    ae = InterpretableAutoencoder(adata, hidden=(16,), seed=0).train(**FAST)
    out = ae.to_anndata()
    assert list(out.var_names) == terms
    assert out.shape == (adata.n_obs, len(terms))
    assert out.varm["gene_weights"].shape == (len(terms), adata.n_vars)
    assert list(out.uns["gene_names"]) == list(adata.var_names)
    assert out.uns["summary"]["epochs_run"] == 3
    assert out.uns["params"]["epochs"] == 3
    np.testing.assert_array_equal(out.X, ae.get_latent_representation())


def test_covariates_are_modelled(small_data):
    adata, gene_sets = small_data
    adata.obs["depth"] = np.linspace(0, 1, adata.n_obs)
    ae = make(adata, gene_sets, covariates=["cell_type", "depth"]).train(**FAST)
    n_types = adata.obs["cell_type"].nunique()
    assert ae.module.covariate_weight.shape == (adata.n_vars, n_types + 1)
    assert ae.module.covariate_weight.abs().sum() > 0
    with pytest.raises(ValueError, match="covariate 'nope' is not an obs column"):
        make(adata, gene_sets, covariates=["nope"])


@pytest.mark.slow
def test_planted_terms_rank_top_by_logistic_accuracy():
    adata, gene_sets = simulate_counts(n_cells=1000, n_genes=400, n_sets=20, seed=1)
    ae = InterpretableAutoencoder(adata, gene_sets, seed=0)
    ae.train(epochs=30, batch_size=62, lr=2e-3, progress=False)
    planted = adata.uns["simulation"]["terms"]
    latents = ae.get_latent_representation()
    labels = (adata.obs["condition"] == "stimulated").to_numpy()
    acc = np.array(
        [
            LogisticRegression().fit(latents[:, [k]], labels).score(latents[:, [k]], labels)
            for k in range(latents.shape[1])
        ]
    )
    top = [ae.factor_names[k] for k in np.argsort(-acc, kind="stable")[: len(planted)]]
    assert sorted(top) == sorted(planted), dict(zip(ae.factor_names, acc.round(3), strict=True))
    assert acc[: len(planted)].min() > 0.9  # planted sets are SET_000.. = first factors


# ------------------------------------------------------------------ bad input
def test_gene_sets_sharing_no_gene_are_refused(small_data):
    adata, _ = small_data
    with pytest.raises(ValueError, match="same species and symbols"):
        make(adata, {"A": ["X1", "X2"], "B": ["X3", "X4"]})


def test_nan_or_inf_in_the_data_is_refused(small_data):
    adata, gene_sets = small_data
    adata.X[3, 7] = np.nan
    adata.X[5, 1] = np.inf
    with pytest.raises(ValueError, match="2 NaN/Inf value.*in 2 cell.*remove those cells"):
        make(adata, gene_sets)


def test_empty_anndata_is_refused(small_data):
    adata, gene_sets = small_data
    with pytest.raises(ValueError, match="the AnnData is empty"):
        make(adata[:0].copy(), gene_sets)


def test_mask_with_other_genes_is_refused(small_data):
    adata, gene_sets = small_data
    mask, terms = build_mask(adata.var_names, gene_sets)
    with pytest.raises(ValueError, match="mask is 119 genes x 8 terms but the data have 120"):
        InterpretableAutoencoder(adata, mask=mask[1:], terms=terms)
    frame = pd.DataFrame(mask.toarray(), index=[f"other{i}" for i in range(120)], columns=terms)
    with pytest.raises(ValueError, match="mask's genes .* do not match the data's var_names"):
        InterpretableAutoencoder(adata, mask=frame)
    empty = pd.DataFrame(0.0, index=adata.var_names, columns=terms)
    with pytest.raises(ValueError, match="share no gene with the data"):
        InterpretableAutoencoder(adata, mask=empty)


def test_bad_training_options_are_refused(small_data):
    adata, gene_sets = small_data
    ae = make(adata, gene_sets)
    with pytest.raises(ValueError, match="batch_size=1.*lr=-1"):
        ae.train(batch_size=1, lr=-1, progress=False)
    with pytest.raises(ValueError, match="val_fraction=0.001 of 161 cells"):
        ae.train(val_fraction=0.001, progress=False)
    with pytest.raises(
        ValueError, match=r"unknown training option\(s\) \['epoch'\]; known: epochs"
    ):
        ae.train(epoch=3, progress=False)
    assert not ae.is_trained


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
def test_trains_on_cuda_and_saves_for_cpu(small_data, tmp_path):
    adata, gene_sets = small_data
    ae = make(adata, gene_sets, device="cuda").train(**FAST)
    assert ae.module.decoder_weight.is_cuda
    ae.save(tmp_path / "m")
    back = InterpretableAutoencoder.load(tmp_path / "m", adata, device="cpu")
    np.testing.assert_allclose(
        back.get_latent_representation(), ae.get_latent_representation(), atol=1e-4
    )


# ------------------------------------------------------------------ centring and storage
def test_centring_is_on_by_default_stored_and_used_on_new_data(small_data, caplog):
    adata, gene_sets = small_data
    ae = make(adata, gene_sets).train(**FAST)
    assert ae.params()["center"] is True
    np.testing.assert_allclose(ae.gene_means, adata.X.mean(axis=0), rtol=1e-5, atol=1e-6)
    # new cells are centred with the training means, not with their own
    z = ae.get_latent_representation()
    np.testing.assert_allclose(ae.get_latent_representation(adata[:40].copy()), z[:40], atol=1e-6)
    # training on raw data with centring = training on centred data; centring centred data
    # changes nothing (bit for bit) and says so
    centred = adata.copy()
    centred.X = adata.X - ae.gene_means
    with caplog.at_level(logging.INFO, logger="interpretable_ae.model"):
        again = make(centred, gene_sets).train(**FAST)
    assert "the data look centred already" in caplog.text
    plain = make(centred, gene_sets, center=False).train(**FAST)
    for other in (again, plain):
        assert torch.equal(other.module.decoder_weight, ae.module.decoder_weight)
    assert (again.gene_means == 0).all() and plain.gene_means is None
    uncentred = make(adata, gene_sets, center=False).train(**FAST)
    assert not torch.equal(uncentred.module.decoder_weight, ae.module.decoder_weight)


def test_dense_sparse_and_backed_data_train_to_identical_models(small_data, tmp_path, monkeypatch):
    adata, gene_sets = small_data
    monkeypatch.setattr(data_module, "WINDOW_BYTES", 5000)  # backed: windows of a few batches
    options = FAST | {"decoder_solve": "doubling", "val_fraction": 0.2, "seed": 2}
    sparse = adata.copy()
    sparse.X = sp.csr_matrix(adata.X)
    sparse.write_h5ad(tmp_path / "cells.h5ad")
    backed = ad.read_h5ad(tmp_path / "cells.h5ad", backed="r")
    fits = [make(a, gene_sets).train(**options) for a in (adata, sparse, backed)]
    for fit in fits[1:]:
        assert torch.equal(fit.module.decoder_weight, fits[0].module.decoder_weight)
        assert fit.history.drop(columns="seconds").equals(fits[0].history.drop(columns="seconds"))
        np.testing.assert_array_equal(
            fit.get_latent_representation(), fits[0].get_latent_representation()
        )
        np.testing.assert_array_equal(fit.gene_means, fits[0].gene_means)


def test_nan_in_sparse_data_is_refused(small_data):
    adata, gene_sets = small_data
    adata.X = sp.csr_matrix(adata.X)
    adata.X.data[5] = np.nan
    with pytest.raises(ValueError, match="1 NaN/Inf value.*in 1 cell"):
        make(adata, gene_sets)


# ------------------------------------------------------------------ factor signs
def test_flipping_a_factor_changes_neither_reconstruction_nor_penalty(small_data):
    adata, gene_sets = small_data
    ae = make(adata, gene_sets).train(**FAST)
    module = ae.module.eval()
    x = torch.from_numpy(adata.X - ae.gene_means)
    weights = l1_weights(torch.from_numpy(ae.annotation.toarray()), 2, 1, 0.93, 0.0)
    z, recon = module(x)
    before = objective(x, z, recon, 0.1)[0] + decoder_penalty(module.decoder_weight, weights, 0.57)
    signs = torch.tensor([1.0, -1.0] * 5 + [-1.0])
    flip_factors_(module, signs)
    z2, recon2 = module(x)
    assert torch.equal(recon2, recon) and torch.equal(z2, z * signs)
    after = objective(x, z2, recon2, 0.1)[0] + decoder_penalty(module.decoder_weight, weights, 0.57)
    assert float(after.detach()) == float(before.detach())


def factor_simulation(seed: int = 0) -> tuple[ad.AnnData, dict[str, list[str]]]:
    """500 cells = 6 non-negative factors on disjoint sets of 15 genes (positive weights),
    30 genes of noise only: every factor is identifiable, up to its sign."""
    rng = np.random.default_rng(seed)
    n, k, per = 500, 6, 15
    n_genes = k * per + 30
    truth = np.zeros((n_genes, k))
    for j in range(k):
        truth[j * per : (j + 1) * per, j] = rng.uniform(0.5, 1.5, per)
    x = rng.gamma(2.0, 0.5, size=(n, k)) @ truth.T + rng.normal(0, 0.3, size=(n, n_genes))
    genes = [f"G{i}" for i in range(n_genes)]
    sets = {f"SET_{j}": genes[j * per : (j + 1) * per] for j in range(k)}
    return ad.AnnData(x.astype(np.float32), var=pd.DataFrame(index=genes)), sets


def test_a_higher_latent_means_higher_expression_of_the_terms_genes():
    adata, gene_sets = factor_simulation()
    ae = InterpretableAutoencoder(adata, gene_sets, hidden=(32, 32), seed=0)
    ae.train(epochs=60, batch_size=50, lr=2e-3, progress=False)
    assert (factor_signs(ae.decoder_weights, ae.annotation) == 1).all()  # the rule applied
    z = ae.get_latent_representation()

    def correlations(latents: np.ndarray) -> np.ndarray:
        return np.array(
            [
                np.corrcoef(latents[:, k], adata[:, gene_sets[t]].X.mean(axis=1))[0, 1]
                for k, t in enumerate(ae.terms)
            ]
        )

    assert ae.active.all()
    assert correlations(z).min() > 0.9  # each factor tracks its genes, with the right sign
    assert correlations(-z).max() < -0.9  # (the other sign is as good a fit: the rule decides)
