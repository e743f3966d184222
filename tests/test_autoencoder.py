"""The estimator: API, determinism, persistence and bad input, on tiny simulated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from interpretable_ae.autoencoder import KEY, InterpretableAutoencoder
from interpretable_ae.contract import validate_factor_anndata
from interpretable_ae.genesets import build_mask
from interpretable_ae.model import Dropout
from interpretable_ae.simulate import simulate_counts

FAST = {"epochs": 3, "batch_size": 32, "progress": False}


@pytest.fixture(autouse=True)
def one_thread():
    """Small matmuls are fastest on one thread; restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data():
    adata, gene_sets = simulate_counts(n_cells=161, n_genes=120, n_sets=8, set_size=(5, 15))
    return adata, gene_sets


def make(adata, gene_sets, **kw):
    kw = {"n_sparse": 2, "n_dense": 1, "hidden": (32, 32), "seed": 0} | kw
    return InterpretableAutoencoder(adata, gene_sets, **kw)


def test_train_writes_scverse_results(data):
    adata, gene_sets = data
    ae = make(adata, gene_sets).train(**FAST)
    n_factors = 8 + 2 + 1
    assert adata.obsm[f"X_{KEY}"].shape == (adata.n_obs, n_factors)
    assert adata.varm[f"W_{KEY}"].shape == (adata.n_vars, n_factors)
    info = adata.uns[KEY]
    assert info["factor_names"][-3:] == ["sparse_0", "sparse_1", "dense_0"]
    assert info["kinds"].count("annotated") == 8
    assert len(info["history"]["train_loss"]) == 3
    assert np.isfinite(ae.final_loss)
    # the recorded latents are the model's encoding of the data
    np.testing.assert_array_equal(adata.obsm[f"X_{KEY}"], ae.get_latent_representation())


@pytest.mark.parametrize(
    "schedule",
    [{}, {"warmup_epochs": 0.5, "lr_decay": "cosine"}, {"decoder_solve": "epoch"}],
)
def test_seeded_training_is_bit_identical(data, schedule):
    adata, gene_sets = data
    runs = [make(adata.copy(), gene_sets).train(**FAST, **schedule, seed=3) for _ in range(2)]
    assert runs[0].params()["decoder_solve"] == schedule.get("decoder_solve", "none")
    assert torch.equal(runs[0].module.decoder_weight, runs[1].module.decoder_weight)
    np.testing.assert_array_equal(
        runs[0].get_latent_representation(), runs[1].get_latent_representation()
    )
    other = make(adata.copy(), gene_sets).train(**FAST, seed=4)
    assert not torch.equal(runs[0].module.decoder_weight, other.module.decoder_weight)


def test_dropout_drops_a_fraction_p_and_keeps_the_expectation():
    drop = Dropout(0.2)
    x = torch.ones(400, 500)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        y = drop(x)
    assert abs(float((y == 0).float().mean()) - 0.2) < 0.01
    assert set(torch.unique(y).tolist()) == {0.0, 1.25}
    assert torch.equal(drop.eval()(x), x)


def test_training_leaves_the_global_rng_alone(data):
    adata, gene_sets = data
    state = torch.get_rng_state()
    make(adata, gene_sets).train(**FAST)
    assert torch.equal(state, torch.get_rng_state())


def test_one_cell_tail_and_validation_with_early_stopping(data):
    adata, gene_sets = data  # 161 cells; 129 train cells % 64 == 1
    ae = make(adata, gene_sets).train(
        epochs=40, batch_size=64, lr=1e-2, val_fraction=0.2, patience=2, progress=False
    )
    hist = ae.history
    assert len(hist.val_loss) == len(hist.train_loss) <= 40
    assert hist.stopped_early == (len(hist.train_loss) < 40)
    assert hist.val_loss[hist.best_epoch] == min(hist.val_loss)


def test_save_load_gives_identical_latents(data, tmp_path):
    adata, gene_sets = data
    ae = make(adata, gene_sets, covariates=["cell_type"]).train(**FAST)
    ae.save(tmp_path / "model")
    assert not list((tmp_path / "model").glob("*.pkl"))
    back = InterpretableAutoencoder.load(tmp_path / "model", adata)
    np.testing.assert_array_equal(back.get_latent_representation(), ae.get_latent_representation())
    assert back.factor_names == ae.factor_names
    assert back.term_genes("SET_000").equals(ae.term_genes("SET_000"))
    with pytest.raises(ValueError, match="already holds"):
        ae.save(tmp_path / "model")


def test_load_refuses_another_gene_list(data, tmp_path):
    adata, gene_sets = data
    ae = make(adata, gene_sets).train(**FAST)
    ae.save(tmp_path / "m")
    with pytest.raises(ValueError, match="the model has 120 genes, the data 119"):
        InterpretableAutoencoder.load(tmp_path / "m", adata[:, 1:].copy())
    with pytest.raises(ValueError, match="order must match"):
        InterpretableAutoencoder.load(tmp_path / "m", adata[:, ::-1].copy())


def test_latents_of_new_data_with_other_gene_order_and_missing_genes(data):
    adata, gene_sets = data
    ae = make(adata, gene_sets).train(**FAST)
    z = ae.get_latent_representation()
    shuffled = adata[:, np.random.default_rng(0).permutation(adata.n_vars)].copy()
    np.testing.assert_allclose(ae.get_latent_representation(shuffled), z, rtol=1e-5, atol=1e-5)
    dropped = adata[:, 5:].copy()
    with pytest.warns(UserWarning, match="5 of the model's 120 genes are missing"):
        z_missing = ae.get_latent_representation(dropped)
    zero_filled = adata.copy()
    zero_filled.X[:, :5] = 0
    np.testing.assert_allclose(
        z_missing, ae.get_latent_representation(zero_filled), rtol=1e-5, atol=1e-5
    )
    duplicated = adata[:, ::-1].copy()
    duplicated.var_names = [*duplicated.var_names[:-1], duplicated.var_names[0]]
    with pytest.raises(ValueError, match="var_names are not unique"):
        ae.get_latent_representation(duplicated)


def test_term_lookups(data):
    adata, gene_sets = data
    ae = make(adata, gene_sets).train(epochs=3, batch_size=32, lambda3=50.0, progress=False)
    by_norm = ae.terms_by_norm()
    assert list(by_norm.index) == sorted(gene_sets, key=lambda t: -by_norm[t])
    assert set(ae.active_terms()) == set(by_norm.index[by_norm > 0])
    genes = ae.term_genes("SET_001")
    assert set(genes.index[genes["in_annotation"]]) == set(gene_sets["SET_001"])
    np.testing.assert_array_equal(genes["gained"], (genes["weight"] != 0) & ~genes["in_annotation"])
    with pytest.raises(ValueError, match="not a factor"):
        ae.term_genes("NO_SUCH_TERM")


def test_strong_group_lasso_switches_factors_off(data):
    adata, gene_sets = data
    ae = make(adata, gene_sets).train(epochs=2, batch_size=32, lambda3=1e4, progress=False)
    assert ae.active_terms(kind=None) == []
    assert not adata.uns[KEY]["active"].any()


def test_factor_contract_and_prepared_mask(data):
    adata, gene_sets = data
    mask, terms = build_mask(adata.var_names, gene_sets)
    adata.varm["geneset_mask"], adata.uns["geneset_terms"] = mask, terms
    ae = InterpretableAutoencoder(adata, hidden=(16,), seed=0).train(**FAST)
    out = ae.to_factor_anndata(run={"setup": "test"})
    validate_factor_anndata(out)
    assert out.uns["run"]["model"] == "autoencoder"
    assert out.uns["run"]["setup"] == "test"
    assert list(out.var_names) == terms
    np.testing.assert_array_equal(out.X, adata.obsm[f"X_{KEY}"])


def test_covariates_are_modelled(data):
    adata, gene_sets = data
    adata.obs["depth"] = np.linspace(0, 1, adata.n_obs)
    ae = make(adata, gene_sets, covariates=["cell_type", "depth"]).train(**FAST)
    n_types = adata.obs["cell_type"].nunique()
    assert ae.module.covariate_weight.shape == (adata.n_vars, n_types + 1)
    assert ae.module.covariate_weight.abs().sum() > 0
    with pytest.raises(ValueError, match="covariate 'nope' is not an obs column"):
        make(adata, gene_sets, covariates=["nope"])


# ------------------------------------------------------------------ bad input
def test_gene_sets_sharing_no_gene_are_refused(data):
    adata, _ = data
    with pytest.raises(ValueError, match="same species and symbols"):
        make(adata, {"A": ["X1", "X2"], "B": ["X3", "X4"]})


def test_nan_or_inf_in_the_data_is_refused(data):
    adata, gene_sets = data
    adata.X[3, 7] = np.nan
    adata.X[5, 1] = np.inf
    with pytest.raises(ValueError, match="2 NaN/Inf value.*in 2 cell.*remove those cells"):
        make(adata, gene_sets)


def test_empty_anndata_is_refused(data):
    adata, gene_sets = data
    with pytest.raises(ValueError, match="the AnnData is empty"):
        make(adata[:0].copy(), gene_sets)


def test_mask_with_other_genes_is_refused(data):
    adata, gene_sets = data
    mask, terms = build_mask(adata.var_names, gene_sets)
    with pytest.raises(ValueError, match="mask is 119 genes x 8 terms but the data have 120"):
        InterpretableAutoencoder(adata, mask=mask[1:], terms=terms)
    frame = pd.DataFrame(mask.toarray(), index=[f"other{i}" for i in range(120)], columns=terms)
    with pytest.raises(ValueError, match="mask's genes .* do not match the data's var_names"):
        InterpretableAutoencoder(adata, mask=frame)
    empty = pd.DataFrame(0.0, index=adata.var_names, columns=terms)
    with pytest.raises(ValueError, match="share no gene with the data"):
        InterpretableAutoencoder(adata, mask=empty)


def test_bad_training_options_are_refused(data):
    adata, gene_sets = data
    ae = make(adata, gene_sets)
    with pytest.raises(ValueError, match="batch_size=1.*lr=-1"):
        ae.train(batch_size=1, lr=-1, progress=False)
    with pytest.raises(ValueError, match="val_fraction=0.001 of 161 cells"):
        ae.train(val_fraction=0.001, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_trains_on_cuda_and_saves_for_cpu(data, tmp_path):
    adata, gene_sets = data
    ae = make(adata, gene_sets, device="cuda").train(**FAST)
    assert ae.module.decoder_weight.is_cuda
    ae.save(tmp_path / "m")
    back = InterpretableAutoencoder.load(tmp_path / "m", adata, device="cpu")
    np.testing.assert_allclose(
        back.get_latent_representation(), ae.get_latent_representation(), atol=1e-4
    )
