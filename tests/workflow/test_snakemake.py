"""Static checks of the workflow: lint, the paper's DAG, the README's commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _run(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_lint_is_clean():
    proc = _run("--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_snakefmt_is_clean():
    """The workflow catalog's formatting (snakefmt, settings in pyproject.toml)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["paper.yaml", "paper_msigdb751.yaml"])
def test_paper_dag_builds_without_network(tmp_path: Path, name: str):
    proc = _run(
        "-n", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(ROOT / "config" / name),
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    rules = ["download_dataset", "download_genesets", "prepare", "fit_autoencoder",
             "fit_slalom", "score", "figure1", "figure2", "figure3", "runtime_table",
             "fit_autoencoder_null", "calibration", "verdicts"]  # fmt: skip
    if name == "paper_msigdb751.yaml":  # paper.yaml matches mouse genes as the authors did
        rules.append("download_orthologs")
    for rule in rules:
        assert re.search(rf"^{rule}\s+\d+", out, re.M), f"rule {rule} missing from the DAG"
    for dataset in ("kang", "macosko", "liao"):
        assert f"results/{dataset}/scores.tsv" in out
        assert f"results/{dataset}/ae/null39/factors.h5ad" in out  # 40 random fits, ae only
        assert f"results/{dataset}/slalom/null0/" not in out
    assert "results/demo" not in out  # --configfile replaces the demo config


def test_readme_quick_start_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = next(ln for ln in ci.splitlines() if ln.startswith("python3.11 -m venv"))
    assert test_cmd in readme, "the README's test command differs from .ci/run's"
    block = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [ln for ln in block.splitlines()[1:] if ln.strip() and not ln.startswith("#")]
    assert len(commands) == 2, f"the quick start must be exactly two commands: {commands}"
    assert commands[1] == test_cmd


def test_random_fits_are_jobs_of_their_own_and_f_sclvm_only_when_asked(tmp_path: Path):
    """The demo calibrates the autoencoder with one job per random fit; naming f-scLVM under
    analyses.random_masks.models adds its random fits; a calibrated model that sees the
    condition is refused before anything runs."""

    def planned(extra: str) -> str:
        config = tmp_path / "extra.yaml"
        config.write_text(extra)
        proc = _run("-n", "-d", str(tmp_path / "work"), "--configfile",
                    str(ROOT / "config" / "config.yaml"), str(config))  # fmt: skip
        return proc.stdout + proc.stderr + f"\nreturncode {proc.returncode}"

    demo = planned("seed: 0\n")
    assert re.search(r"^fit_autoencoder_null\s+4$", demo, re.M), demo[-3000:]
    assert "fit_slalom_null" not in demo and re.search(r"^calibration\s+1$", demo, re.M)
    both = planned("analyses:\n  random_masks:\n    fits: 2\n    models: [ae, slalom]\n")
    assert re.search(r"^fit_slalom_null\s+2$", both, re.M) and "results/demo/slalom/null1" in both
    off = planned("analyses:\n  random_masks:\n    fits: 0\n")
    assert not re.search(r"^(fit_autoencoder_null|calibration)\s+\d+$", off, re.M)
    assert re.search(r"^verdicts\s+1$", off, re.M)  # the verdicts say what is not testable
    seen = planned("models:\n  ae:\n    options:\n      covariates: [condition]\n")
    assert "returncode 0" not in seen and "covariates: the fit sees the condition" in seen


@pytest.mark.slow
def test_a_local_source_is_locked_beside_the_config(tmp_path: Path):
    """The workflow records an unpinned source in ``<config>.lock.yaml`` beside its (first)
    config file on the first download, and refuses the changed file on the next."""
    import yaml

    from helpers.workflow_copy import copy_workflow

    work = copy_workflow(tmp_path)
    (work / "data").mkdir()
    own = work / "data" / "astro.txt"
    own.write_text("ASTROCYTES GFAP S100B AQP4\n")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["genesets"]["astro"] = {"source": "local", "path": "data/astro.txt", "format": "plain"}
    (work / "mine").mkdir()
    (work / "mine" / "own.yaml").write_text(yaml.safe_dump(config))
    args = ("resources/genesets/astro.gmt", "--cores", "1", "--retries", "0",
            "--configfile", "mine/own.yaml")  # fmt: skip
    first = _run(*args, cwd=work)
    assert first.returncode == 0, first.stderr[-3000:]
    lock = work / "mine" / "own.lock.yaml"
    digest = __import__("hashlib").sha256(own.read_bytes()).hexdigest()
    assert yaml.safe_load(lock.read_text()) == {"local:data/astro.txt": digest}

    own.write_text("ASTROCYTES GFAP S100B\n")
    again = _run(*args, cwd=work)
    assert again.returncode != 0
    errors = [ln for ln in again.stderr.splitlines() if ln.startswith("error in download")]
    assert len(errors) == 1, again.stderr[-3000:]
    assert f"differs from {digest}, recorded in {lock}" in errors[0]
    assert not (work / "resources/genesets/astro.gmt").exists()
