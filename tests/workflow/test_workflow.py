"""The whole workflow, end to end, on the tiny config, in a copy of the repository.

Asserts on what the outputs say (every replicate, the planted term wins, accuracies are sane,
figures have content), then on re-runs: nothing to do when nothing changed, no re-fit when the
library changes (the results made by older code are listed instead), a re-fit when the seed
changes, side-by-side outputs from the models asked for.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from matplotlib.image import imread

from helpers import ROOT
from helpers.workflow_copy import copy_workflow

# the demo's config with the tests' changes merged over it (see tests/configs/tiny.yaml)
TINY = (ROOT / "config" / "config.yaml", ROOT / "tests" / "configs" / "tiny.yaml")
PLANTED = "HALLMARK_INTERFERON_GAMMA_RESPONSE"
MODELS = ("ae", "slalom", "slalom_dense")
REPLICATES = 2  # tests/configs/tiny.yaml

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    """``snakemake *args --configfile <tiny>`` (targets first: --configfile takes every name
    after it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "--configfile", *map(str, TINY)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc


def jobs_planned(workdir: Path, *args: str) -> set[str]:
    """Rule names a dry-run would run (``args``: targets first, then options)."""
    proc = snakemake(workdir, *args, "-n", "--quiet", "rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    rules = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            rules.add(parts[0])
    return rules


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A copy of the workflow with the tiny config run to completion, report included."""
    work = copy_workflow(tmp_path_factory.mktemp("workflow"))
    proc = snakemake(work, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    report = snakemake(work, "--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    return work


def test_prepared_data(run: Path):
    prepared = ad.read_h5ad(run / "results/demo/prepared.h5ad")
    assert prepared.n_obs > 100 and prepared.n_vars > 100
    terms = list(prepared.uns["geneset_terms"])
    assert PLANTED in terms
    assert not any(t.startswith(("KEGG_", "BIOCARTA_")) for t in terms)
    assert set(prepared.obs["condition"].astype(str)) == {"control", "stimulated"}
    # prepared data are CSR float32; every gene is in a kept term
    assert sp.isspmatrix_csr(prepared.X) and prepared.X.dtype == np.float32
    assert np.isfinite(prepared.X.data).all()
    assert np.asarray(prepared.varm["geneset_mask"].sum(axis=1)).ravel().min() >= 1


def test_every_replicate_honours_the_contract(run: Path):
    for model in MODELS:
        seeds = []
        for rep in range(REPLICATES):
            factors = ad.read_h5ad(run / f"results/demo/{model}/rep{rep}/factors.h5ad")
            assert factors.uns["run"]["setup"] == model
            assert set(factors.var["kind"].astype(str)) <= {"annotated", "sparse", "dense"}
            assert PLANTED in factors.var_names
            assert np.isfinite(factors.X).all()
            seeds.append(factors.uns["run"]["seed"])
        assert seeds == list(range(REPLICATES))  # replicate r: seed + r, config seed 0
    assert (run / "results/demo/ae/rep1/model").is_dir()
    dense = ad.read_h5ad(run / "results/demo/slalom_dense/rep0/factors.h5ad")
    assert (dense.var["kind"] == "dense").sum() == 3
    a, b = (ad.read_h5ad(run / f"results/demo/ae/rep{r}/factors.h5ad") for r in (0, 1))
    assert not np.allclose(a.X, b.X)  # two seeds, two fits


def test_planted_term_wins(run: Path):
    scores = pd.read_csv(run / "results/demo/ae/scores.tsv", sep="\t")
    expected = {"dataset", "model", "setup", "replicate", "seed", "term", "kind",
                "accuracy_train", "accuracy_cv", "auroc", "weight_norm", "active", "rank"}  # fmt: skip
    assert expected <= set(scores.columns)
    assert scores[["accuracy_train", "accuracy_cv", "auroc"]].stack().between(0, 1).all()
    assert sorted(set(scores["replicate"])) == list(range(REPLICATES))
    for _, rep in scores.groupby("replicate"):
        first = rep.sort_values("rank").iloc[0]
        assert first.term == PLANTED and first.accuracy_cv > 0.85 and first.auroc > 0.9
    summary = pd.read_csv(run / "results/demo/ae/summary.tsv", sep="\t").set_index("term")
    assert summary.index[0] == PLANTED and summary.loc[PLANTED, "first_fraction"] == 1.0
    assert summary.loc[PLANTED, "replicates"] == REPLICATES
    assert summary.loc[PLANTED, "accuracy_cv_sd"] < 0.05
    runner_up = summary.iloc[1]
    # the runner-up (often HALLMARK_INFLAMMATORY_RESPONSE, which shares planted genes)
    # trails by 0.07-0.39 over seeds 0-2, with or without the unannotated genes
    lead = summary.loc[PLANTED, "accuracy_cv_mean"] - runner_up.accuracy_cv_mean
    assert lead > 0.05
    # score_genes (the baselines' module score) puts the planted term first too, but only
    # 0.09 ahead of INFLAMMATORY_RESPONSE; the autoencoder's factor leads by 0.31 (seeds 0-1)
    module_score = pd.read_csv(run / "results/demo/baselines.tsv", sep="\t").set_index("term")
    module_score = module_score["score_accuracy_cv"]
    assert module_score.idxmax() == PLANTED
    assert lead > module_score[PLANTED] - module_score.drop(PLANTED).max() + 0.1


def test_slalom_finds_the_planted_term(run: Path):
    """Without dense factors slalom ranks the planted term first (the paper's Figure 2); with
    3 dense factors the best factor still carries the signal, whichever kind it is."""
    summary = pd.read_csv(run / "results/demo/summary.tsv", sep="\t")
    assert list(dict.fromkeys(summary["model"])) == list(MODELS)
    plain = summary[summary.model == "slalom"]
    assert plain.iloc[0].term == PLANTED and plain.iloc[0].auroc_mean > 0.95, plain.head(3)
    dense = summary[summary.model == "slalom_dense"]
    assert dense.iloc[0].auroc_mean > 0.95, dense.head(3)
    gathered = pd.read_csv(run / "results/demo/scores.tsv", sep="\t")
    assert len(gathered) == sum(
        len(pd.read_csv(run / f"results/demo/{m}/scores.tsv", sep="\t")) for m in MODELS
    )


def test_tables(run: Path):
    runtime = pd.read_csv(run / "results/runtime.tsv", sep="\t").set_index("model")
    assert set(runtime.index) == set(MODELS)
    assert (runtime["replicates"] == REPLICATES).all()
    assert (runtime["seconds_mean"] > 0).all() and (runtime["seconds_sd"] >= 0).all()
    assert (runtime["max_rss_mb_mean"] >= 0).all()
    assert runtime.loc["slalom", "converged"] == "yes" and pd.isna(runtime.loc["ae", "converged"])
    assert runtime.loc["ae", "seconds_ratio"] == 1.0
    assert (run / "results/runtime.md").read_text().count("|") > 10
    for model in MODELS:
        top = pd.read_csv(run / f"results/demo/{model}/top_terms.tsv", sep="\t")
        assert len(top) <= 5 and set(top["model"]) == {model}  # tiny.yaml: top_n 5
        assert (top["replicates"] == REPLICATES).all()


FIGURES = {  # figure: the log of the rule that drew it
    "ae/figures/fig1_condition": "figure1_ae",
    "ae/figures/fig1_cell_type": "figure1_ae",
    "figures/fig2_accuracy": "figure2",
    "ae/figures/fig3_groups": "figure3_ae",
    "figures/refinement_ae": "refinement_ae",
    "figures/donor_test": "donor_test",
    "figures/baselines": "baselines",
    "figures/calibration_ae": "calibration_ae",
}
# what a figure function says when it draws a note in place of the data (a bare figure)
NOTHING_DRAWN = ("to draw", "was tested", "in any top list")


@pytest.mark.parametrize("name", FIGURES)
def test_figures_show_the_data(run: Path, name: str):
    """Each figure is drawn from the run's data, not the note that replaces an empty figure
    (what each draws is checked against its data in the figure scripts' tests)."""
    png = run / f"results/demo/{name}.png"
    pdf = run / f"results/demo/{name}.pdf"
    image = imread(png)[..., :3]
    assert image.shape[0] > 300 and image.shape[1] > 300
    # a note on bare axes inks ~0.4 % of the pixels; the demo's figures 3 % or more
    assert (image.min(axis=2) < 0.9).mean() > 0.02, "the figure is (almost) blank"
    log = (run / f"logs/demo/{FIGURES[name]}.log").read_text()
    assert not [line for line in log.splitlines() if any(n in line for n in NOTHING_DRAWN)]
    assert pdf.read_bytes().startswith(b"%PDF")


def test_analyses_beyond_the_paper(run: Path):
    """Refinement, the donor-level test (the demo's simulated donors) and the baselines
    all see the planted term."""
    refinement = pd.read_csv(run / "results/demo/ae/refinement.tsv", sep="\t")
    planted = refinement[refinement.term == PLANTED]
    assert set(planted.status) >= {"kept", "gained"}
    donor = pd.read_csv(run / "results/demo/donor_test.tsv", sep="\t")
    ae = donor[donor.model == "ae"].set_index("term")
    assert ae.loc[PLANTED, "test"] == "paired t-test" and ae.loc[PLANTED, "n_samples"] == 6
    assert ae.loc[PLANTED, "significant"] and ae.loc[PLANTED, "effect"] != 0
    baselines = pd.read_csv(run / "results/demo/baselines.tsv", sep="\t").set_index("term")
    assert baselines.loc[PLANTED, "gsea_rank"] == 1 and baselines.loc[PLANTED, "score_rank"] == 1
    assert baselines.loc[PLANTED, "agreement"] == "both"


def test_report_is_self_contained(run: Path):
    html = (
        (run / "report.html").read_text(errors="replace") if (run / "report.html").is_file() else ""
    )
    if not html:  # Snakemake writes a zip when the name ends in .zip; .html is one file
        pytest.fail("report.html was not written")
    assert "fig2_accuracy.png" in html and "runtime.tsv" in html and "summary.tsv" in html
    assert "donor_test.png" in html and "baselines.png" in html
    assert "calibration_ae.png" in html and "verdicts.html" in html and "groups.html" in html
    assert "Read first: what the run can claim" in html


def test_random_mask_fits_are_calibrated_with_their_control(run: Path):
    """Every random fit is its own fit of the autoencoder on the mask with permuted gene
    rows (seed recorded); groups come first with their spread and null p; the label control
    and the verdicts are written."""
    prepared = ad.read_h5ad(run / "results/demo/prepared.h5ad")
    for k in range(3):
        fit = ad.read_h5ad(run / f"results/demo/ae/null{k}/factors.h5ad")
        assert fit.uns["run"]["random_mask_seed"] == k and fit.uns["run"]["seed"] == k
        assert list(fit.var_names) == list(prepared.uns["geneset_terms"])
        if k < REPLICATES:  # the same seed on another mask: another fit
            rep = ad.read_h5ad(run / f"results/demo/ae/rep{k}/factors.h5ad")
            assert not np.allclose(fit.X, rep.X)
        scores = pd.read_csv(run / f"results/demo/ae/null{k}/scores.tsv", sep="\t")
        assert scores["response_share"].notna().all()
    label_null = pd.read_csv(run / "results/demo/ae/rep0/label_null.tsv", sep="\t")
    assert label_null.shape == (200, len(prepared.uns["geneset_terms"]))  # the label null
    assert not (run / "results/demo/slalom/null0").exists()  # f-scLVM only when asked
    calib = run / "results/demo/ae/calibration"
    groups = pd.read_csv(calib / "groups.tsv", sep="\t")
    lead = groups[groups["score"] == "response_share"]
    assert lead["rank"].tolist() == list(range(1, len(lead) + 1))
    assert {"score_mean", "score_sd", "pvalue", "padj", "leader", "leader_count"} <= set(lead)
    assert lead["pvalue"].between(0, 1).all() and (lead["replicates"] == REPLICATES).all()
    assert (lead["pvalue"] == lead[["pvalue_mask", "pvalue_label"]].max(axis=1)).all()
    planted = pd.read_csv(calib / "terms.tsv", sep="\t").query("term == @PLANTED")
    assert len(planted) == 1 and planted["pvalue_label"].iloc[0] < 0.01  # it responds
    control = pd.read_csv(calib / "control.tsv", sep="\t")
    assert set(control["level"]) == {"group", "term"} and (control["significant"] == 0).all()
    verdicts = pd.read_csv(run / "results/demo/verdicts.tsv", sep="\t")
    assert len(verdicts) == 4
    assert set(verdicts["verdict"]) <= {"held", "not held", "not testable here"}
    summary = pd.read_csv(run / "results/demo/summary.tsv", sep="\t")
    assert summary["response_share_mean"].notna().all()


def test_nothing_to_do_when_nothing_changed(run: Path):
    assert jobs_planned(run) == set()


def test_side_by_side_models_gather_only_what_is_asked(run: Path):
    """side_by_side_models: a list, or the models finished when the DAG is built; the
    side-by-side outputs are redone (their inputs changed), no fit or per-model output is."""
    side = {"gather_scores", "figure2", "runtime_table"}
    # they put the side-by-side models together too
    analyses = {"donor_test", "baselines", "verdicts"}
    planned = jobs_planned(run, "--config", "side_by_side_models=[ae, slalom]")
    # the table of code versions gathers every result's record: redone with any result
    assert planned == side | analyses | {"code_versions", "all"}
    summary = run / "results/demo/slalom_dense/summary.tsv"
    parked = summary.with_name("parked.tsv")
    summary.rename(parked)
    try:
        finished = jobs_planned(
            run, "results/demo/figures/fig2_accuracy.png", "results/runtime.md",
            "--config", "side_by_side_models=finished",
        )  # fmt: skip
        assert finished == side  # slalom_dense is left out, not re-run
        assert "summarise_model" in jobs_planned(run)  # by default everything is waited for
    finally:
        parked.rename(summary)
    assert jobs_planned(run) == set()


def provenance(workdir: Path, *args: str) -> str:
    """``python -m iae_pipeline.provenance *args`` as the README gives it, in ``workdir``."""
    proc = subprocess.run(
        [sys.executable, "-m", "iae_pipeline.provenance", *args], cwd=workdir,
        capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(workdir / "workflow/lib"), "PATH": ""},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_library_edit_reruns_no_fit_and_the_older_results_are_listed(run: Path):
    """Editing a library module (a git pull) reschedules only the table of code versions;
    the provenance command lists what the older code made, and --forcerun reruns it."""
    assert provenance(run) == ""  # everything made by the code as it is
    records = sorted((run / "results/provenance").rglob("*.json"))
    assert {r.parent.name for r in records} >= {"demo"} and len(records) > 20
    model_py = run / "workflow/lib/interpretable_ae/model.py"
    original = model_py.read_text()
    model_py.write_text(original + "\n# touched by the test\n")
    try:
        assert jobs_planned(run) == {"code_versions", "all"}
        listed = provenance(run)
        assert "interpretable_ae/model.py" in listed and "fit_autoencoder" in listed
        assert "fit_slalom" not in listed  # slalom's fits never import the estimator
        outputs = provenance(run, "--outputs").split()
        assert "results/demo/ae/rep0/factors.h5ad" in outputs
        assert "results/demo/slalom/rep0/factors.h5ad" not in outputs
        assert "fit_autoencoder" in jobs_planned(run, "--forcerun", *outputs)
    finally:
        model_py.write_text(original)
    assert jobs_planned(run) == set()


def test_seed_change_refits(run: Path):
    planned = jobs_planned(run, "--config", "seed=1")
    assert {"fit_autoencoder", "fit_slalom", "prepare"} <= planned


def dry_run_jobs(workdir: Path, configfile: Path, *targets: str) -> dict[str, int]:
    """Rule -> number of jobs of a dry-run (no config merged over it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *targets, "-n", "--quiet", "rules", "--configfile",
         str(configfile)],
        cwd=workdir, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


def test_one_models_results_wait_for_no_other_model(tmp_path: Path):
    """The paper's Liao autoencoder results (scores over 5 replicates, top terms, Figure 1)
    are built from the autoencoder's fits alone, never waiting for f-scLVM."""
    work = copy_workflow(tmp_path)
    targets = [f"results/liao/ae/{name}" for name in
               ("summary.tsv", "scores.tsv", "top_terms.tsv", "figures/fig1_condition.png")]  # fmt: skip
    jobs = dry_run_jobs(work, ROOT / "config" / "paper.yaml", *targets)
    assert jobs["fit_autoencoder"] == 5 and jobs["score"] == 5  # paper.yaml: 5 replicates
    assert "fit_slalom" not in jobs and "gather_scores" not in jobs
    everything = dry_run_jobs(work, ROOT / "config" / "paper.yaml")
    assert everything["fit_slalom"] == 3 * 2 * 5  # 3 datasets, 2 setups, 5 replicates each


# ---- real cells: Kang 2018 (600 IFN-beta-stimulated / control PBMCs), Reactome 4.0 ------

INTERFERON_TERMS = ("REACTOME_INTERFERON_SIGNALING", "REACTOME_INTERFERON_ALPHA_BETA_SIGNALING")
CYTOKINE_SIGNALING = "REACTOME_CYTOKINE_SIGNALING_IN_IMMUNE_SYSTEM"  # holds every IFN gene


def kang_config(path: Path, real) -> Path:
    """A user's config: a local .h5ad and a local GMT, the autoencoder with the paper's
    settings, 5 replicates."""
    config = {
        "seed": 0,
        "replicates": 5,
        "genesets": {
            "reactome_v4": {
                "source": "local",
                "path": str(real("genesets/c2.cp.reactome.v4.0.symbols.gmt")),
            }
        },
        "datasets": {
            "kang600": {
                "source": "h5ad",
                "path": str(real("expression/kang2018_liger_600.h5ad")),
                "species": "human",
                "condition_key": "condition",
                "cell_type_key": "cell_type",
                "data_type": "auto",
                # the default preprocessing: 99 genes, 24 terms (no INTERFERON_ALPHA_BETA)
                "genesets": ["reactome_v4"],
            }
        },
        "models": {
            "ae": {
                "kind": "autoencoder",
                "label": "Autoencoder",
                "options": {
                    "epochs": 80,
                    "lr": 0.001,
                    "batch_size": 62,
                    "lambda0": 0.1,
                    "lambda1": 0.93,
                    "lambda3": 0.57,
                },
            }  # fmt: skip
        },
        "scoring": {"cv_folds": 5, "top_n": 10},
        "figures": {
            "fig1": {"model": "ae", "terms": [INTERFERON_TERMS[0], CYTOKINE_SIGNALING]},
            "fig2": {"terms": "INTERFERON", "models": ["ae"]},
            "fig3": {"model": "ae"},
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_real_kang_cells_rank_an_interferon_term_top(tmp_path: Path, real):
    """On 600 real IFN-beta-stimulated and control PBMCs, with the paper's Reactome 4.0 sets,
    settings and the default preprocessing, REACTOME_INTERFERON_SIGNALING is in the top 2 of
    24 terms by mean CV accuracy over 5 replicates (chance 1/12), and a term ranked above it
    holds all of its genes (CYTOKINE_SIGNALING_IN_IMMUNE_SYSTEM). Measured over seeds 0-29
    in groups of 5: first in 2 groups, second behind that term in 4; a single replicate can
    rank it lower (17th, 23rd). Needs the model to centre the genes, as the authors do."""
    (tmp_path / "work").mkdir()
    work = copy_workflow(tmp_path / "work")
    config = kang_config(tmp_path / "kang.yaml", real)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(config)],
        cwd=work, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    summary = pd.read_csv(work / "results/kang600/ae/summary.tsv", sep="\t")
    assert (summary["replicates"] == 5).all()
    scores = pd.read_csv(work / "results/kang600/ae/scores.tsv", sep="\t")
    assert sorted(set(scores["seed"])) == [0, 1, 2, 3, 4]
    ifn = summary[summary["term"].isin(INTERFERON_TERMS)].iloc[0]
    assert len(summary) == 24 and ifn.rank_of_mean <= 2, summary.head(5)[
        ["term", "accuracy_cv_mean"]
    ]
    assert ifn.accuracy_cv_mean > 0.65
    prepared = ad.read_h5ad(work / "results/kang600/prepared.h5ad")
    mask = pd.DataFrame(
        prepared.varm["geneset_mask"].toarray() > 0,
        index=prepared.var_names,
        columns=list(prepared.uns["geneset_terms"]),
    )
    for above in summary["term"][summary["rank_of_mean"] < ifn.rank_of_mean]:
        assert (mask[above] | ~mask[ifn.term]).all(), f"{above} lacks genes of {ifn.term}"


def test_finished_side_by_side_before_any_model_finished(tmp_path: Path):
    """Nothing finished yet: the default target leaves the side-by-side outputs out (and
    says so); asking for one of them is an error naming the key."""
    work = copy_workflow(tmp_path)
    finished = ("--config", "side_by_side_models=finished")
    planned = jobs_planned(work, *finished)
    assert "fit_slalom" in planned and not planned & {"gather_scores", "figure2", "runtime_table"}
    proc = snakemake(work, "results/demo/figures/fig2_accuracy.png", "-n", *finished)
    assert proc.returncode != 0
    assert "side_by_side_models: finished: no model of dataset 'demo' has finished" in (
        proc.stdout + proc.stderr
    )
