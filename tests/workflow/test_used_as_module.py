"""The workflow used as a Snakemake module, as snakedeploy sets it up: a Snakefile of the
user's own, in another directory, with its own config (the workflow's test config,
.test/config/config.yaml), and every rule taken from the module under a prefix."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import ROOT

TEST_CONFIG = ROOT / ".test" / "config" / "config.yaml"
PLANTED = "HALLMARK_INTERFERON_GAMMA_RESPONSE"


def deploy(work: Path, snakefile: str) -> Path:
    """A user's directory: config/config.yaml and a Snakefile declaring the module."""
    (work / "config").mkdir(parents=True)
    shutil.copy(TEST_CONFIG, work / "config" / "config.yaml")
    (work / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n\n\n'
        f"module iae:\n    snakefile:\n        {snakefile}\n    config:\n        config\n\n\n"
        "use rule * from iae as iae_*\n"
    )
    return work


def snakemake(work: Path, *args: str, env: dict | None = None, timeout: int = 1800):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=work, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else copy.deepcopy(value)
    return out


def test_test_config_is_the_demo_with_the_tiny_changes():
    """.test/config/config.yaml is config/config.yaml with tests/configs/tiny.yaml merged
    over it (what the other workflow tests run), so the two cannot drift apart."""
    demo = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    tiny = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    assert yaml.safe_load(TEST_CONFIG.read_text()) == _merge(demo, tiny)


@pytest.mark.workflow
def test_test_config_dry_run_in_the_catalog_layout():
    """``snakemake --directory .test``: the catalog's way to run the test config."""
    proc = snakemake(ROOT, "--directory", ".test", "-n", "--quiet", "rules", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fit_autoencoder" in proc.stdout and "fit_slalom" in proc.stdout


@pytest.mark.workflow
def test_remote_module_without_the_library_says_how_to_install_it(tmp_path: Path):
    """A module read from a repository (here a local one, through Snakemake's source cache,
    as github(...) is) needs the packages installed; without them, one line says so."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    work = deploy(tmp_path, f'gitfile("{ROOT}", "workflow/Snakefile", ref="{head}")')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = snakemake(work, "-n", env=env, timeout=300)
    assert proc.returncode != 0
    assert "the workflow's library is not installed" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.workflow
def test_runs_as_a_module_from_another_directory(tmp_path: Path):
    work = deploy(tmp_path / "user", f'"{ROOT / "workflow" / "Snakefile"}"')
    proc = snakemake(work, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = work / "results"
    summary = pd.read_csv(results / "demo/ae/summary.tsv", sep="\t")
    assert summary.iloc[0].term == PLANTED
    assert set(pd.read_csv(results / "runtime.tsv", sep="\t")["model"]) == {
        "ae", "slalom", "slalom_dense"
    }  # fmt: skip
    versions = pd.read_csv(results / "code_versions.tsv", sep="\t")
    assert versions["rule"].str.startswith("iae_").all()  # the user's prefix
    assert (versions["made_by_current_code"] == "yes").all()
    assert (results / "demo/figures/fig2_accuracy.png").stat().st_size > 10_000
    assert not (ROOT / "workflow" / "results").exists()  # outputs stay in the user's folder
    report = snakemake(work, "--report", "report.html", timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (work / "report.html").read_text(errors="replace")
    assert "fig2_accuracy.png" in html and "code_versions" in html
    # the user's own config decides: 2 replicates of every model (.test/config)
    assert sorted(p.name for p in (results / "demo/ae").glob("rep*")) == ["rep0", "rep1"]
