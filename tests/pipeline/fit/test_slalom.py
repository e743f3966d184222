"""f-scLVM (slalom): the adapter to the factor contract and the fit script.

slalom fits run on one BLAS thread and on small data: a real one (Buettner 2015 mESC with
Reactome 4.0, cell-cycle stage known) and planted simulations.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from helpers import ROOT
from helpers.script_runner import run_as_snakemake
from iae_pipeline.contract import validate_factor_anndata
from iae_pipeline.fit.slalom import SlalomNotConvergedError, SlalomOptions, fit_slalom
from interpretable_ae.genesets import build_mask, read_gmt
from interpretable_ae.simulate import simulate_counts

CELL_CYCLE = ("CELL_CYCLE", "MITOTIC", "DNA_REPLICATION", "G1_S", "G2_M", "S_PHASE")
FAST = {"min_iterations": 100, "max_iterations": 1000, "tolerance": 1e-4}  # test speed


def _prepared(adata: ad.AnnData, gene_sets: dict[str, list[str]], min_genes: int) -> ad.AnnData:
    mask, terms = build_mask(adata.var_names, gene_sets, min_genes=min_genes)
    adata.varm["geneset_mask"] = mask
    adata.uns["geneset_terms"] = terms
    return adata


def _accuracy(factors: ad.AnnData, labels: np.ndarray) -> pd.Series:
    """3-fold univariate logistic accuracy of each factor for ``labels``."""
    return pd.Series(
        {
            name: cross_val_score(LogisticRegression(), factors[:, name].X, labels, cv=3).mean()
            for name in factors.var_names
        }
    )


@pytest.fixture(scope="module")
def tiny() -> ad.AnnData:
    adata, gene_sets = simulate_counts(
        n_cells=60, n_genes=80, n_sets=5, set_size=(10, 20), n_planted=1, seed=3
    )
    return _prepared(adata, gene_sets, min_genes=5)


@pytest.fixture(scope="module")
def planted() -> ad.AnnData:
    adata, gene_sets = simulate_counts(
        n_cells=300, n_genes=250, n_sets=15, set_size=(15, 40), n_planted=2, seed=0
    )
    return _prepared(adata, gene_sets, min_genes=5)


@pytest.mark.slow
def test_trains_on_buettner_and_ranks_cell_cycle_high(real: Path) -> None:
    table = pd.read_csv(real("expression/buettner2015_mesc.csv.gz"), index_col=0)
    stage = table.index.to_numpy().astype(str)
    table.columns = table.columns.str.upper()  # mouse symbols -> human-style Reactome symbols
    table = table.loc[:, ~table.columns.duplicated()]
    variable = table.var().sort_values(ascending=False).index[:1000]
    adata = ad.AnnData(
        table[variable].to_numpy(np.float32),
        obs=pd.DataFrame(
            {"condition": pd.Categorical(stage), "cell_type": "mESC"},
            index=[f"cell{i}" for i in range(len(table))],
        ),
        var=pd.DataFrame(index=variable),
    )
    gmt = read_gmt(real("genesets/c2.cp.reactome.v4.0.symbols.gmt"))
    adata = _prepared(adata, gmt, min_genes=15)

    factors = fit_slalom(adata, {}, seed=0, setup="buettner")  # slalom's defaults: 3 dense

    validate_factor_anndata(factors)
    run = factors.uns["run"]
    assert run["converged"] and run["iterations"] > 700 and run["n_dense"] == 3
    annotated = factors.var[factors.var["kind"] == "annotated"]
    assert len(annotated) == len(adata.uns["geneset_terms"])
    ranked = annotated.sort_values("relevance", ascending=False).index
    cell_cycle = [t for t in ranked if any(key in t for key in CELL_CYCLE)]
    assert len(cell_cycle) == 4 and len(ranked) == 18
    # the most relevant factor is a cell-cycle term (4 of 18: chance 0.22) and it is the
    # factor that tells the stages apart: more accurate than every other annotated factor by
    # 0.2 (they sit at the chance level, 0.36; both together by chance: 4/18 x 1/18 = 0.012).
    # Not an absolute accuracy bar: the stages shift global expression, so the mean
    # expression of unrelated terms (IMMUNE_SYSTEM, METABOLISM_OF_LIPIDS...) reaches 0.65.
    assert ranked[0] in cell_cycle, list(ranked[:3])
    accuracy = _accuracy(factors[:, list(ranked)], stage)
    assert accuracy[ranked[0]] > accuracy.drop(ranked[0]).max() + 0.2, accuracy.round(3)


@pytest.mark.slow
def test_without_dense_factors_planted_terms_rank_top(planted: ad.AnnData) -> None:
    factors = fit_slalom(planted, {"n_dense": 0, **FAST}, seed=0, setup="no_dense")
    accuracy = _accuracy(factors, planted.obs["condition"].to_numpy())
    assert set(factors.var["kind"]) == {"annotated"}
    assert set(accuracy.nlargest(2).index) == set(planted.uns["simulation"]["terms"])
    assert accuracy.max() > 0.85


def test_factor_signs_follow_the_model_packages_rule(planted: ad.AnnData) -> None:
    """The documented convention (docs/analyses.md, "Factor sign"): the sum of a factor's
    weights over its annotated genes (over all genes for a dense factor) is not negative,
    so a higher loading means more expression of the term's genes."""
    factors = fit_slalom(planted, {"n_dense": 1, **FAST}, seed=0, setup="signs")
    genes = list(factors.uns["gene_names"])
    weights = pd.DataFrame(factors.varm["gene_weights"].T, index=genes, columns=factors.var_names)
    mask = pd.DataFrame(
        planted.varm["geneset_mask"].toarray() > 0,
        index=planted.var_names,
        columns=list(planted.uns["geneset_terms"]),
    ).loc[genes]
    for factor, kind in zip(factors.var_names, factors.var["kind"], strict=True):
        w = weights[factor]
        inside = w[mask[factor]].sum() if kind == "annotated" else 0.0
        assert (inside if inside != 0 else w.sum()) >= 0, factor
    X = planted.X.toarray() if hasattr(planted.X, "toarray") else np.asarray(planted.X)
    for term in planted.uns["simulation"]["terms"]:
        expression = X[:, planted.var_names.isin(mask.index[mask[term]])].mean(axis=1)
        assert np.corrcoef(factors[:, term].X.ravel(), expression)[0, 1] > 0, term


@pytest.mark.slow
def test_dense_factors_take_the_signal(planted: ad.AnnData) -> None:
    factors = fit_slalom(planted, {"n_dense": 3, **FAST}, seed=0, setup="dense3")
    accuracy = _accuracy(factors, planted.obs["condition"].to_numpy())
    dense = accuracy[factors.var["kind"].to_numpy() == "dense"]
    planted_terms = accuracy[planted.uns["simulation"]["terms"]]
    assert dense.max() > 0.7
    assert dense.max() > planted_terms.max() + 0.1


def test_contract_order_and_mapping(tiny: ad.AnnData) -> None:
    factors = fit_slalom(
        tiny,
        {"n_dense": 2, "n_sparse": 1, "min_iterations": 5, "max_iterations": 60}
        | {"require_convergence": False},
        seed=1,
        setup="s",
    )
    validate_factor_anndata(factors)
    terms = list(tiny.uns["geneset_terms"])
    assert list(factors.var_names) == terms + ["sparse_0", "dense_0", "dense_1"]
    assert list(factors.var["kind"]) == ["annotated"] * len(terms) + ["sparse"] + ["dense"] * 2
    mask = tiny.varm["geneset_mask"].toarray() > 0
    modelled = tiny.var_names[mask.any(axis=1)]  # prune_genes: genes in at least one term
    assert list(factors.uns["gene_names"]) == list(modelled)
    assert factors.varm["gene_weights"].shape == (factors.n_vars, len(modelled))
    # each annotated column is its own term: the prior annotation is the term's genes
    prior = factors.var["n_genes_prior"]
    assert list(prior[terms]) == list(mask.sum(axis=0))
    assert prior["sparse_0"] == 20 and (prior[["dense_0", "dense_1"]] == len(modelled)).all()
    assert factors.obs.equals(tiny.obs) and factors.X.shape == (tiny.n_obs, factors.n_vars)
    run = factors.uns["run"]
    assert (run["model"], run["setup"], run["seed"], run["n_sparse"]) == ("slalom", "s", 1, 1)
    assert run["iterations"] <= 60 and isinstance(run["converged"], bool)


# slalom's pre-training correlates its constant 'bias' column with PC1 (0 / 0)
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_hurdle_noise_model_fits(tiny: ad.AnnData) -> None:
    factors = fit_slalom(tiny, {"noise": "hurdle", "n_dense": 1, **FAST}, seed=0)
    validate_factor_anndata(factors)
    # slalom's extra 'bias' (mean) column is not a factor; hurdle never drops factors
    assert list(factors.var_names) == [*tiny.uns["geneset_terms"], "dense_0"]
    assert factors.var["active"].all() and factors.uns["run"]["converged"]


def test_seed_makes_fits_repeatable_and_leaves_global_rng_alone(tiny: ad.AnnData) -> None:
    options = {"n_dense": 1, "n_sparse": 1, "min_iterations": 5, "max_iterations": 20}
    options["require_convergence"] = False
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = fit_slalom(tiny, options, seed=7)
    assert np.array_equal(np.random.get_state()[1], before)
    again = fit_slalom(tiny, options, seed=7)
    other = fit_slalom(tiny, options, seed=8)
    np.testing.assert_array_equal(first.X, again.X)
    assert not np.allclose(first.X, other.X)  # the sparse factor's genes and shuffles differ


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pruneGenes": False}, "did you mean 'prune_genes'"),
        ({"noise": "poisson"}, "noise must be one of"),
        ({"min_iterations": 900, "max_iterations": 800}, "min_iterations < max_iterations"),
        ({"n_dense": 1.5}, "'n_dense' must be an integer"),
        ({"prune_genes": "no"}, "'prune_genes' must be true or false"),
        ({"tolerance": "1e-6"}, "'tolerance' must be a number"),
        ({"nHidden": 0}, "did you mean 'n_dense'"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SlalomOptions.from_mapping(options)


def test_bad_input_is_refused(tiny: ad.AnnData) -> None:
    no_mask = tiny.copy()
    del no_mask.varm["geneset_mask"]
    with pytest.raises(ValueError, match=r"varm\['geneset_mask'\] is missing"):
        fit_slalom(no_mask)
    nan = tiny.copy()
    nan.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="1 non-finite value"):
        fit_slalom(nan)
    with pytest.raises(ValueError, match="no term has more than min_genes=500"):
        fit_slalom(tiny, {"min_genes": 500})


def test_min_genes_is_slaloms_exclusive_min_genes(tiny: ad.AnnData) -> None:
    """min_genes=k fits the terms with MORE than k genes, as slalom's minGenes=k
    (Iok = I.sum(axis=0) > minGenes), so the authors' minGenes=12 carries over as is."""
    sizes = np.asarray(tiny.varm["geneset_mask"].sum(axis=0)).ravel().astype(int)
    k = int(np.sort(sizes)[1])  # the second-smallest term: it and the smallest are dropped
    options = {"n_dense": 0, "min_genes": k, **FAST, "require_convergence": False}
    factors = fit_slalom(tiny, options, seed=0)
    expected = [t for t, n in zip(tiny.uns["geneset_terms"], sizes, strict=True) if n > k]
    assert list(factors.var_names) == expected and len(expected) < len(sizes)
    assert factors.uns["run"]["n_terms_fitted"] == len(expected)


def test_more_cells_than_max_cells_is_refused_before_fitting(tiny: ad.AnnData) -> None:
    with pytest.raises(ValueError, match=r"60 cells is more than max_cells=59: .* raise max_cells"):
        fit_slalom(tiny, {"max_cells": 59})
    assert SlalomOptions().max_cells >= 65_813  # the paper's largest data (Liao) runs


def test_not_converging_names_setup_and_iteration(tiny: ad.AnnData) -> None:
    options = {"n_dense": 0, "min_iterations": 1, "max_iterations": 3, "tolerance": 1e-300}
    with pytest.raises(SlalomNotConvergedError, match="setup 'short'.*after 3 iterations") as err:
        fit_slalom(tiny, options, setup="short")
    assert err.value.iteration == 3


@pytest.fixture
def run_script(tmp_path: Path, tiny: ad.AnnData):
    """Run workflow/scripts/fit_slalom.py in-process with a ``snakemake`` object."""

    def run(adata: ad.AnnData, options: dict, setup: str) -> tuple[int, Path, str]:
        prepared, factors, log = (tmp_path / n for n in ("prepared.h5ad", "f.h5ad", "f.log"))
        adata.write_h5ad(prepared)
        code = run_as_snakemake(
            "fit_slalom",
            input={"prepared": str(prepared)},
            output={"factors": str(factors)},
            params={"options": options, "seed": 0, "setup": setup},
            log={"log": str(log)},
            threads=1,
        )
        return code, factors, log.read_text()

    return run


def test_script_writes_the_contract(run_script, tiny: ad.AnnData) -> None:
    code, path, log = run_script(tiny, {"n_dense": 3, **FAST}, setup="dense3")
    assert code == 0, log
    factors = ad.read_h5ad(path)
    validate_factor_anndata(factors)
    assert factors.uns["run"]["setup"] == "dense3" and "slalom setup 'dense3':" in log
    assert not list(path.parent.glob(".*partial"))


def test_script_fails_cleanly_without_convergence(run_script, tiny: ad.AnnData) -> None:
    options = {"min_iterations": 1, "max_iterations": 3, "tolerance": 1e-300}
    code, path, log = run_script(tiny, options, setup="no_dense")
    assert code == 1 and not path.exists()
    assert "setup 'no_dense' did not converge" in log and "after 3 iterations" in log


def test_script_keeps_a_fit_without_convergence_when_asked(run_script, tiny) -> None:
    """As config/paper.yaml runs f-scLVM: a fit still changing at the cap is kept, logged
    and recorded in uns['run']['converged']."""
    options = {
        "n_dense": 0, "min_iterations": 1, "max_iterations": 3, "tolerance": 1e-300,
        "require_convergence": False,
    }  # fmt: skip
    code, path, log = run_script(tiny, options, setup="capped")
    assert code == 0, log
    run = ad.read_h5ad(path).uns["run"]
    assert run["converged"] is False or run["converged"] == 0
    assert run["iterations"] == 3
    assert "not converged at max_iterations=3" in log and "(NOT converged)" in log


def test_script_refuses_too_many_cells_naming_the_key(run_script, tiny: ad.AnnData) -> None:
    code, path, log = run_script(tiny, {"max_cells": 50}, setup="slalom_dense")
    errors = [ln for ln in log.splitlines() if " ERROR " in ln]
    assert code == 1 and not path.exists() and len(errors) == 1
    assert "60 cells is more than max_cells=50" in errors[0]
    assert "models.slalom_dense.options.max_cells" in errors[0]


def test_script_fails_cleanly_on_numerical_failure(run_script, tiny: ad.AnnData) -> None:
    flat = tiny.copy()
    flat.X[:, tiny.varm["geneset_mask"][:, 0].toarray().ravel() > 0] = 1.0  # a term's genes
    code, path, log = run_script(flat, FAST, setup="dense3")
    assert code == 1 and not path.exists()
    assert "setup 'dense3' failed numerically during initialisation (iteration 0)" in log


def test_script_refuses_bad_options(run_script, tiny: ad.AnnData) -> None:
    code, path, log = run_script(tiny, {"nHidden": 3}, setup="dense3")
    assert code == 1 and not path.exists()
    assert "params.options: unknown slalom option 'nHidden' (did you mean 'n_dense'?)" in log


# ---- checkpoints: a stopped fit resumes bit-identical -----------------------------------

RESUME = {"n_dense": 1, "n_sparse": 1, "min_iterations": 60, "max_iterations": 80}


def _same_factors(a: ad.AnnData, b: ad.AnnData) -> None:
    assert np.array_equal(a.X, b.X) and list(a.var_names) == list(b.var_names)
    assert np.array_equal(a.varm["gene_weights"], b.varm["gene_weights"])
    pd.testing.assert_frame_equal(a.var, b.var)
    assert a.uns["run"] == b.uns["run"]


def _iterations_run(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The iterations the fitting loop runs from now on (it checks the state after each)."""
    import iae_pipeline.fit.slalom as adapter

    ran: list[int] = []
    check = adapter._check_state

    def counting(fa, label: str, iteration: int) -> None:
        if iteration:
            ran.append(iteration)
        check(fa, label, iteration=iteration)

    monkeypatch.setattr(adapter, "_check_state", counting)
    return ran


def test_a_stopped_fit_resumes_from_its_checkpoint_bit_identical(tiny, tmp_path, monkeypatch):
    import iae_pipeline.fit.slalom as adapter

    options = {**RESUME, "require_convergence": False}
    reference = fit_slalom(tiny, options, seed=4)
    iterations = reference.uns["run"]["iterations"]
    assert iterations > 50
    save = adapter.save_state

    def save_then_stop(*args, **kwargs):  # the job is killed right after its checkpoint
        save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(adapter, "save_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        fit_slalom(tiny, options, seed=4, checkpoint_dir=tmp_path, checkpoint_every=50)
    monkeypatch.setattr(adapter, "save_state", save)
    with np.load(tmp_path / adapter.CHECKPOINT_FILE, allow_pickle=False) as state:
        assert '"iteration": 50' in str(state["meta"])
    ran = _iterations_run(monkeypatch)
    resumed = fit_slalom(tiny, options, seed=4, checkpoint_dir=tmp_path, checkpoint_every=50)
    assert ran == list(range(51, iterations + 1))  # on from the checkpoint, not from the start
    _same_factors(resumed, reference)
    # another seed does not take this checkpoint
    other = fit_slalom(tiny, options, seed=5, checkpoint_dir=tmp_path, checkpoint_every=1000)
    assert not np.array_equal(other.X, reference.X)


@pytest.mark.slow
def test_a_killed_fit_resumes_bit_identical(tiny, tmp_path, monkeypatch):
    """SIGKILL a fit in another process once it has saved a checkpoint; the next fit
    continues from that iteration and gives the uninterrupted result."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import iae_pipeline.fit.slalom as adapter

    options = {**RESUME, "max_iterations": 1500, "min_iterations": 1400}
    options["require_convergence"] = False
    data = tmp_path / "tiny.h5ad"
    tiny.write_h5ad(data)
    state = tmp_path / "checkpoint" / adapter.CHECKPOINT_FILE
    code = (
        "import anndata as ad\n"
        "from iae_pipeline.fit.slalom import fit_slalom\n"
        f"fit_slalom(ad.read_h5ad({str(data)!r}), {options!r}, seed=4,\n"
        f"           checkpoint_dir={str(state.parent)!r}, checkpoint_every=100)\n"
        "print('finished')\n"
    )
    root = ROOT
    env = dict(os.environ, PYTHONPATH=str(root / "workflow" / "lib"))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL and b"finished" not in out, "killed too late"
    with np.load(state, allow_pickle=False) as saved:
        done = int(__import__("json").loads(str(saved["meta"]))["iteration"])
    assert 0 < done < options["max_iterations"]
    ran = _iterations_run(monkeypatch)
    resumed = fit_slalom(tiny, options, seed=4, checkpoint_dir=state.parent, checkpoint_every=100)
    assert ran == list(range(done + 1, resumed.uns["run"]["iterations"] + 1))
    _same_factors(resumed, fit_slalom(tiny, options, seed=4))
