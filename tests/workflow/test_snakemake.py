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
             "fit_slalom", "score", "figure1", "figure2", "figure3", "runtime_table"]  # fmt: skip
    if name == "paper_msigdb751.yaml":  # paper.yaml matches mouse genes as the authors did
        rules.append("download_orthologs")
    for rule in rules:
        assert re.search(rf"^{rule}\s+\d+", out, re.M), f"rule {rule} missing from the DAG"
    for dataset in ("kang", "macosko", "liao"):
        assert f"results/{dataset}/scores.tsv" in out
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
