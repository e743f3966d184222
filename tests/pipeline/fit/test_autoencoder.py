"""The autoencoder in the workflow: options passed through from the config, in step with
the estimator's one definition of them, and the factor contract of a fit."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from helpers import ROOT
from iae_pipeline.contract import validate_factor_anndata
from iae_pipeline.fit.autoencoder import fit_autoencoder, option_names, split_options
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import build_mask
from interpretable_ae.training import DECODER_SOLVES, LR_DECAYS, PRECISIONS, TrainConfig

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def schema_options() -> dict:
    schema = yaml.safe_load(SCHEMA.read_text())
    model = schema["properties"]["models"]["additionalProperties"]
    branch = next(
        b for b in model["allOf"] if b["if"]["properties"]["kind"]["const"] == "autoencoder"
    )
    return branch["then"]["properties"]["options"]["properties"]


def test_the_schema_lists_exactly_the_estimators_options():
    assert set(schema_options()) == set(option_names())


def test_the_schema_enums_and_bounds_agree_with_the_training_options():
    props = schema_options()
    assert props["lr_decay"]["enum"] == list(LR_DECAYS)
    assert props["decoder_solve"]["enum"] == list(DECODER_SOLVES)
    assert props["precision"]["enum"] == list(PRECISIONS)
    for name in TrainConfig.option_names():
        spec = props.get(name, {})
        for bound, refused in (("minimum", -1e-9), ("exclusiveMinimum", 0.0)):
            if bound in spec:  # the bound passes the schema; just past it, the estimator refuses
                edge = spec[bound] + refused
                kind = int if spec.get("type") == "integer" else float
                if kind is int:
                    edge = spec[bound] - 1 if bound == "minimum" else spec[bound]
                with pytest.raises(ValueError, match=name):
                    TrainConfig(**{name: kind(edge)})


def test_options_split_and_unknown_ones_are_named():
    arch, train = split_options({"n_dense": 2, "epochs": 3, "device": "cpu"})
    assert arch == {"n_dense": 2, "device": "cpu"} and train == {"epochs": 3}
    with pytest.raises(ValueError, match=r"unknown autoencoder option\(s\) \['epoch'\]"):
        split_options({"epoch": 3})


def test_a_fit_gives_the_factor_contract(small_data, tmp_path):
    adata, gene_sets = small_data
    mask, terms = build_mask(adata.var_names, gene_sets)
    adata.varm[MASK_KEY], adata.uns[TERMS_KEY] = mask, np.asarray(terms, dtype=object)
    options = {"hidden": [16], "epochs": 2, "batch_size": 32, "n_dense": 1}
    ae, factors = fit_autoencoder(
        adata, options, seed=0, setup="ae", progress=False, checkpoint_dir=tmp_path / "ckpt"
    )
    assert not (tmp_path / "ckpt").exists()  # checkpoints go once the fit is done
    validate_factor_anndata(factors)
    assert list(factors.var_names) == [*terms, "dense_0"]
    run = factors.uns["run"]
    assert run["model"] == "autoencoder" and run["setup"] == "ae" and run["seed"] == 0
    assert run["epochs"] == 2 and run["epochs_run"] == 2 and run["n_dense"] == 1
    np.testing.assert_array_equal(factors.X, ae.get_latent_representation())


def test_loadings_streamed_into_the_file_read_back_as_written_whole(small_data, tmp_path):
    """The workflow's fit writes the loadings chunk by chunk (never all in memory): the
    file reads back with the same loadings, cells, factors and metadata as one written
    from the whole matrix."""
    import anndata as ad

    from iae_pipeline.contract import factors_from_estimator, read_factors, write_factor_file

    adata, gene_sets = small_data
    mask, terms = build_mask(adata.var_names, gene_sets)
    adata.varm[MASK_KEY], adata.uns[TERMS_KEY] = mask, np.asarray(terms, dtype=object)
    ae, whole = fit_autoencoder(adata, {"hidden": [16], "epochs": 1}, seed=0, progress=False)
    assert len(list(ae.latent_chunks(batch_size=37))) == 5  # 161 cells: chunks of 37 and 13
    write_factor_file(whole, tmp_path / "whole.h5ad")
    skeleton = factors_from_estimator(ae, {"setup": ""}, loadings=False)
    assert skeleton.X is None
    write_factor_file(skeleton, tmp_path / "streamed.h5ad", ae.latent_chunks())
    back, expected = read_factors(tmp_path / "streamed.h5ad"), ad.read_h5ad(tmp_path / "whole.h5ad")
    assert back.X.dtype == np.float32
    np.testing.assert_array_equal(back.X, expected.X)
    assert back.obs.equals(expected.obs) and back.var.equals(expected.var)
    np.testing.assert_array_equal(back.varm["gene_weights"], expected.varm["gene_weights"])
    assert dict(back.uns["run"]) == dict(expected.uns["run"])
    with pytest.raises(ValueError, match="loadings for 37 of 161 cells"):
        chunks = ae.latent_chunks(batch_size=37)
        write_factor_file(skeleton, tmp_path / "short.h5ad", [next(chunks)])
