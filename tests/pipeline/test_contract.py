"""The factor file and the prepared data: written, read and checked in one place; factor
files without wall time, the same bytes from the same seed, and model files that load
without unpickling."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers.script_runner import run_as_snakemake
from iae_pipeline.contract import make_factor_anndata, validate_factor_anndata
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY
from interpretable_ae.genesets import build_mask


def test_the_factor_contract_needs_no_wall_time():
    factors = make_factor_anndata(
        np.ones((3, 1)),
        pd.DataFrame({"condition": ["a", "b", "a"], "cell_type": "x"}, index=["c0", "c1", "c2"]),
        ["T"], ["annotated"], np.ones((2, 1)), ["g1", "g2"], [True],
        {"model": "m", "setup": "s", "seed": 0},
    )  # fmt: skip
    validate_factor_anndata(factors)
    del factors.uns["run"]["seed"]
    with pytest.raises(ValueError, match=r"uns\['run'\]\['seed'\] is missing"):
        validate_factor_anndata(factors)


# ---- the same seed gives the same bytes ---------------------------------------------------

AE = {"hidden": [16], "epochs": 3, "batch_size": 32, "n_dense": 1}
SLALOM = {"n_dense": 1, "min_iterations": 10, "max_iterations": 30, "require_convergence": False}


@pytest.fixture(scope="module")
def prepared_file(tmp_path_factory) -> Path:
    from interpretable_ae.simulate import simulate_counts

    adata, gene_sets = simulate_counts(n_cells=90, n_genes=60, n_sets=5, set_size=(6, 12))
    adata.X = np.log1p(np.asarray(adata.X, dtype=np.float32))
    mask, terms = build_mask(adata.var_names, gene_sets, min_genes=3)
    adata.varm[MASK_KEY], adata.uns[TERMS_KEY] = mask, np.asarray(terms, dtype=object)
    adata.obs["cell_type"] = "cell"
    path = tmp_path_factory.mktemp("prepared") / "prepared.h5ad"
    adata.write_h5ad(path)
    return path


def _sha256s(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix != ".log"
    }


def _run_models(prepared: Path, out: Path, seed: int, slalom: bool = True) -> dict[str, str]:
    """The fit and score scripts, as Snakemake runs them, into ``out``."""
    common = {"threads": 1, "input": {"prepared": str(prepared)}}
    fits = [
        ("fit_autoencoder", "ae", AE, {"factors": out / "ae/factors.h5ad", "model": out / "ae/model"}),
        ("fit_slalom", "slalom", SLALOM, {"factors": out / "slalom/factors.h5ad"}),
    ]  # fmt: skip
    for name, setup, options, outputs in fits if slalom else fits[:1]:
        code = run_as_snakemake(
            name, **common, output={k: str(v) for k, v in outputs.items()},
            params={"options": options, "seed": seed, "setup": setup},
            log={"log": str(out / f"{setup}.log")},
        )  # fmt: skip
        assert code == 0, (out / f"{setup}.log").read_text()[-2000:]
    if not slalom:
        return _sha256s(out)
    for model in ("ae", "slalom"):  # the score rule scores one fit at a time
        code = run_as_snakemake(
            "score",
            input={"factors": str(out / model / "factors.h5ad"), "prepared": str(prepared)},
            output={key: str(out / model / f"{name}.tsv") for key, name in (
                ("scores", "scores"), ("permuted", "scores_permuted"), ("label_null", "label_null"))},
            params={"dataset": "sim", "model": model, "replicate": 0, "cv_folds": 3,
                    "seed": seed, "design": {}, "label_permutations": 5},
            log={"log": str(out / f"score_{model}.log")},
        )  # fmt: skip
        assert code == 0, (out / f"score_{model}.log").read_text()[-2000:]
    return _sha256s(out)


@pytest.mark.slow
def test_the_same_seed_gives_byte_identical_outputs_and_another_seed_does_not(
    prepared_file, tmp_path
):
    first = _run_models(prepared_file, tmp_path / "first", seed=0)
    again = _run_models(prepared_file, tmp_path / "again", seed=0)
    expected = {
        "ae/factors.h5ad", "ae/model/config.json", "ae/model/model.safetensors",
        "ae/model/annotation.safetensors", "slalom/factors.h5ad",
        *(f"{m}/{t}.tsv" for m in ("ae", "slalom")
          for t in ("scores", "scores_permuted", "label_null")),
    }  # fmt: skip
    assert set(first) == expected and first == again
    for path in ("ae/factors.h5ad", "slalom/factors.h5ad"):
        run = ad.read_h5ad(tmp_path / "first" / path).uns["run"]
        assert not [k for k in run if "second" in k or "time" in k], run
    other = _run_models(prepared_file, tmp_path / "other", seed=1)
    for path in ("ae/factors.h5ad", "ae/model/model.safetensors", "slalom/factors.h5ad"):
        assert other[path] != first[path], path
    assert other["ae/scores.tsv"] != first["ae/scores.tsv"]


def test_model_files_load_without_unpickling(prepared_file, tmp_path, monkeypatch):
    """The autoencoder's files are safetensors and JSON: loading never calls pickle."""
    import torch

    from interpretable_ae import InterpretableAutoencoder

    out = tmp_path / "run"
    _run_models(prepared_file, out, seed=0, slalom=False)
    assert {p.suffix for p in (out / "ae/model").iterdir()} == {".json", ".safetensors"}

    def refuse(*args, **kwargs):
        raise AssertionError("a model file was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model = InterpretableAutoencoder.load(out / "ae/model", device="cpu")
    latents = model.get_latent_representation(ad.read_h5ad(prepared_file))
    np.testing.assert_array_equal(latents, ad.read_h5ad(out / "ae/factors.h5ad").X)
