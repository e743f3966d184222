"""Bad config fails at once: one line naming the key, non-zero exit, nothing in results/."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT
from iae_pipeline.config import (
    ConfigError,
    check_config,
    check_device,
    dataset_figures,
    dataset_settings,
    prefit_requirements,
)
from iae_pipeline.prepare.preprocess import load_gene_sets

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(name: str):
    check_config(_load(name), SCHEMA, base_dir=ROOT)


def test_defaults_and_merges():
    config = _load("config.yaml")
    del config["scoring"]
    check_config(config, SCHEMA, base_dir=ROOT)
    assert config["scoring"] == {"cv_folds": 5, "top_n": 10}  # the schema's defaults
    demo = dataset_settings(config, "demo")
    assert demo["preprocess"]["min_genes"] == 19  # dataset override
    assert demo["preprocess"]["target_sum"] == 10000  # global default
    del config["analyses"]
    check_config(config, SCHEMA, base_dir=ROOT)
    assert config["analyses"]["refinement"]["min_weight"] == 0.01
    assert config["analyses"]["donor_test"] == {"test": "t", "min_cells": 10, "alpha": 0.05}
    figs = dataset_figures(config, "demo")
    assert figs["fig3"]["model"] == "ae" and figs["fig3"]["group_key"] == "condition"


BAD = [
    (lambda c: c["models"]["ae"]["options"].update(epochs="fifty"), "models.ae.options.epochs"),
    (lambda c: c["datasets"]["demo"].update(colour="red"), "datasets.demo"),
    (lambda c: c.update(run=["kang"]), "run: unknown dataset 'kang'"),
    (lambda c: c["datasets"]["demo"].update(genesets=["nope"]), "datasets.demo.genesets"),
    (lambda c: c["datasets"]["demo"].update(source="pbmc3k"), "datasets.demo.source"),
    (
        lambda c: c["datasets"].update(
            mine={
                "source": "h5ad",
                "path": "no/such/file.h5ad",
                "species": "human",
                "genesets": ["msigdb_demo"],
                "condition_key": "stim",
                "cell_type_key": "cell",
            }
        ),
        "datasets.mine.path: file not found",
    ),
    (lambda c: c["figures"]["fig2"].update(models=["ae", "vae"]), "unknown model 'vae'"),
    (lambda c: c["genesets"]["msigdb_demo"].update(sha256="abc"), "genesets.msigdb_demo.sha256"),
    (lambda c: c["datasets"]["demo"].pop("paired"), "datasets.demo: 'paired' is a dependency"),
    (lambda c: c["analyses"]["donor_test"].update(test="anova"), "analyses.donor_test.test"),
    # Figures 1 and 2 are required for every dataset that runs
    (lambda c: c.pop("figures"), "figures.fig1.model: not set for dataset 'demo'"),
    (lambda c: c["figures"].pop("fig1"), "figures.fig1.model: not set for dataset 'demo'"),
    (lambda c: c["figures"]["fig1"].pop("model"), "figures.fig1.model: not set"),
    (
        lambda c: (c["figures"].pop("fig2"), c["datasets"]["demo"]["figures"].pop("fig2")),
        "figures.fig2.terms: not set for dataset 'demo'",
    ),
    (
        lambda c: c["datasets"]["demo"]["figures"]["fig2"].update(terms="INTERFERON(GAMMA"),
        "figures.fig2.terms: 'INTERFERON(GAMMA' is not a valid regular expression",
    ),
    # downloads: https only, names that stay inside resources/, pinned package specs
    (
        lambda c: c["genesets"].update(h={"source": "url", "url": "http://example.org/h.gmt"}),
        "genesets.h.url: 'http://example.org/h.gmt' is not https",
    ),
    (
        lambda c: c["genesets"].update(
            {"../../x": {"source": "local", "path": "config/README.md"}}
        ),
        "genesets: '../../x' does not match",
    ),
    (
        lambda c: c["genesets"]["msigdb_demo"].update(package="pegasuspy==1.10.2; rm -rf ~"),
        "genesets.msigdb_demo.package",
    ),
    (
        lambda c: c["genesets"]["msigdb_demo"].update(members=["../../etc/h.gmt"]),
        "genesets.msigdb_demo.members.0",
    ),
    (
        lambda c: c["datasets"].update(
            k={
                "source": "kang",
                "species": "human",
                "genesets": ["msigdb_demo"],
                "files": {"genes": {"url": "https://example.org/a/.."}},
            }
        ),
        "datasets.k.files.genes.url: the URL's path must end in a plain file name",
    ),
    (
        lambda c: c["datasets"].update(
            k={
                "source": "kang",
                "species": "human",
                "genesets": ["msigdb_demo"],
                "files": {
                    "genes": {"url": "https://example.org/a/genes.tsv.gz"},
                    "tsne": {"url": "https://example.org/b/genes.tsv.gz"},
                },
            }
        ),
        "datasets.k.files.tsne.url: the file name 'genes.tsv.gz' is also that of files.genes",
    ),
    (lambda c: c["datasets"]["demo"].update(drop_unlabelled="yes"), "drop_unlabelled"),
]


@pytest.mark.parametrize("mutate,expected", BAD, ids=[b[1] for b in BAD])
def test_bad_config_names_the_key(mutate, expected):
    config = copy.deepcopy(_load("config.yaml"))
    mutate(config)
    with pytest.raises(ConfigError, match="^config error: ") as err:
        check_config(config, SCHEMA, base_dir=ROOT)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_an_allow_listed_http_url_passes():
    config = copy.deepcopy(_load("config.yaml"))
    url = "http://example.org/h.gmt"
    config["genesets"]["h"] = {"source": "url", "url": url}
    config["allow_insecure_urls"] = [url]
    check_config(config, SCHEMA, base_dir=ROOT)


def test_a_value_with_quotes_and_semicolons_is_only_ever_data(tmp_path: Path, monkeypatch):
    """A local path with quotes, ';' and a command substitution is a file name like any
    other: the config check accepts it and the reader the workflow hands it to reads that
    file; a shell anywhere on the way would have run the payload (and created the marker
    files) or split the name."""
    monkeypatch.chdir(tmp_path)  # a shell would run the payload here
    odd = (
        tmp_path
        / 'my data; it\'s "here"'
        / "sets;'x'$(touch MARKER1);touch MARKER2;`touch MARKER3`.gmt"
    )
    odd.parent.mkdir()
    odd.write_text("HALLMARK_A\tu\tG1\tG2\n")
    config = copy.deepcopy(_load("config.yaml"))
    config["genesets"]["odd"] = {"source": "local", "path": str(odd)}
    config["datasets"]["demo"]["genesets"].append("odd")
    check_config(config, SCHEMA, base_dir=ROOT)
    sets = load_gene_sets([config["genesets"]["odd"]["path"]], [{"name": "odd"}])
    assert sets == {"HALLMARK_A": ["G1", "G2"]}
    assert not list(tmp_path.glob("MARKER*")) and not list(ROOT.glob("MARKER*"))


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available()


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_a_gpu_device_this_machine_lacks_is_one_line(device):
    with pytest.raises(ConfigError, match=rf"models\.ae\.options\.device: .{device}., but") as e:
        check_device(device, "models.ae.options.device")
    assert "\n" not in str(e.value) and "device: auto" in str(e.value)
    for ok in ("auto", "cpu", ""):
        check_device(ok)


def test_prefit_requirements_merge_figures_folds_and_covariates():
    config = _load("config.yaml")
    config["models"]["ae"]["options"]["covariates"] = ["phase"]
    config["datasets"]["demo"]["model_options"] = {"ae": {"covariates": ["bulk_labels"]}}
    needs = prefit_requirements(config, "demo")
    assert needs["cv_folds"] == 5 and needs["covariates"] == {"ae": ["bulk_labels"]}
    assert needs["figures"]["fig2"]["terms"] == "INTERFERON"
    assert needs["source"] == "datasets.demo"


@pytest.mark.slow
@pytest.mark.parametrize(
    "mutate,expected", [BAD[0], BAD[2], BAD[5]], ids=["type", "unknown dataset", "missing path"]
)
def test_snakemake_stops_with_one_line(tmp_path: Path, mutate, expected):
    config = copy.deepcopy(_load("config.yaml"))
    mutate(config)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [
            *SNAKEMAKE,
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(tmp_path),
            "--configfile",
            str(cfg),
            "--cores",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [next(ln for ln in lines if ln.startswith("config error:"))], proc.stderr
    assert expected in lines[0]
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "resources").exists()


def test_worked_example_in_config_readme_is_valid():
    """The own-data example of config/README.md passes the schema (its files are the user's)."""
    text = (ROOT / "config" / "README.md").read_text()
    block = text.split("## Worked example", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    from iae_pipeline.config import validate_schema

    validate_schema(yaml.safe_load(block), SCHEMA)


def test_the_schema_is_checked_by_snakemakes_validate(monkeypatch):
    """The workflow catalog's convention: snakemake.utils.validate checks the schema; the
    custom checks only add what JSON Schema cannot say."""
    import snakemake.utils

    from iae_pipeline.config import validate_schema

    seen = []
    monkeypatch.setattr(snakemake.utils, "validate", lambda *a, **k: seen.append(k))
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    validate_schema(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    assert seen == [{"set_default": False}]


# ---- regression cases found by the fuzzing (test_config_fuzz.py) ---------------------------


@pytest.mark.parametrize("breaks", ["\x1e", "\x85", "\u2028", "\n"])
def test_a_key_holding_a_line_break_character_is_named_on_one_line(breaks):
    """A file role (any key the schema lets through) holding a record separator, NEL, LINE
    SEPARATOR or newline is named escaped: the error stays one line on the terminal."""
    config = _load("paper.yaml")
    config["datasets"]["liao"]["files"][f"h5_C{breaks}9"] = None
    with pytest.raises(ConfigError) as err:
        check_config(config, SCHEMA, base_dir=ROOT)
    message = str(err.value)
    assert len(message.splitlines()) == 1, repr(message)
    escaped = repr(breaks)[1:-1]
    assert message.startswith(f"config error: datasets.liao.files.h5_C{escaped}9: None"), message
