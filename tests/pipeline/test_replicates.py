"""Replicates: which fits a model gets, their seeds, and the models set side by side."""

from __future__ import annotations

import pytest

from iae_pipeline.config import ConfigError
from iae_pipeline.replicates import (
    SEED_DEPENDENT,
    calibrated_models,
    model_replicates,
    random_fit_ids,
    replicate_ids,
    replicate_seed,
    side_by_side_models,
)

CONFIG = {
    "seed": 3,
    "replicates": 4,
    "models": {
        "ae": {"kind": "autoencoder"},
        "slalom": {"kind": "slalom"},
        "slalom_dense": {"kind": "slalom"},
    },
}


def test_replicates_and_their_seeds(monkeypatch):
    assert SEED_DEPENDENT == {"autoencoder": True, "slalom": True}  # measured, see the module
    assert model_replicates(CONFIG, "ae") == [0, 1, 2, 3]
    assert model_replicates(CONFIG, "slalom") == [0, 1, 2, 3]
    assert model_replicates({**CONFIG, "replicates": 1}, "ae") == [0]
    assert model_replicates({"models": CONFIG["models"]}, "ae") == [0]  # default 1
    assert [replicate_seed(CONFIG["seed"], r) for r in (0, 1, 3)] == [3, 4, 6]
    assert replicate_ids("some_new_kind", 2) == [0, 1]  # unknown kinds: assumed seeded
    # a kind whose fits do not depend on the seed is fitted once
    monkeypatch.setitem(SEED_DEPENDENT, "slalom", False)
    assert model_replicates(CONFIG, "slalom") == [0]
    assert model_replicates(CONFIG, "ae") == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="at least 1"):
        replicate_ids("autoencoder", 0)


def test_side_by_side_models():
    assert side_by_side_models(CONFIG, []) == ["ae", "slalom", "slalom_dense"]  # default all
    finished = {**CONFIG, "side_by_side_models": "finished"}
    assert side_by_side_models(finished, ["slalom_dense", "ae"]) == ["ae", "slalom_dense"]
    assert side_by_side_models(finished, []) == []
    listed = {**CONFIG, "side_by_side_models": ["slalom", "ae"]}
    assert side_by_side_models(listed, []) == ["ae", "slalom"]  # in the order of models
    with pytest.raises(ConfigError, match=r"side_by_side_models: unknown model\(s\) \['nope'\]"):
        side_by_side_models({**CONFIG, "side_by_side_models": ["ae", "nope"]}, [])


def test_calibrated_models_and_their_random_fits():
    def with_masks(**spec):
        return {**CONFIG, "datasets": {}, "analyses": {"random_masks": spec}}

    assert calibrated_models(CONFIG) == [] and random_fit_ids(CONFIG, "ae") == []
    assert calibrated_models(with_masks(fits=0)) == []
    on = with_masks(fits=3)
    assert calibrated_models(on) == ["ae"]  # the autoencoders by default, not f-scLVM
    assert random_fit_ids(on, "ae") == [0, 1, 2] and random_fit_ids(on, "slalom") == []
    assert calibrated_models(with_masks(fits=2, models=["slalom", "ae"])) == ["ae", "slalom"]
    with pytest.raises(ConfigError, match=r"random_masks.models: unknown model\(s\) \['x'\]"):
        calibrated_models(with_masks(fits=2, models=["x"]))


def test_a_fit_that_sees_the_condition_cannot_be_calibrated():
    config = {
        **CONFIG,
        "models": {"ae": {"kind": "autoencoder", "options": {"covariates": ["batch"]}}},
        "datasets": {"kang": {"model_options": {"ae": {"covariates": ["condition"]}}}},
        "analyses": {"random_masks": {"fits": 2}},
    }
    with pytest.raises(ConfigError, match="datasets.kang.model_options.ae.covariates"):
        calibrated_models(config)
    config["datasets"]["kang"]["model_options"]["ae"]["covariates"] = ["batch"]
    assert calibrated_models(config) == ["ae"]
